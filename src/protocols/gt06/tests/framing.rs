use super::*;
use crate::protocol::FrameError;

/// A login, a GPS message, a heartbeat, and a 79 79 frame whose content
/// holds 0D 0A (Traccar's 0x9B capture): a valid stream.
fn stream() -> Vec<Vec<u8>> {
    let gps = encode::Gps {
        time: [26, 5, 6, 7, 8, 9],
        satellites: 9,
        lat: 98_000_000,
        lon: 45_000_000,
        south: false,
        west: true,
        speed: 60,
        course: 270,
        valid: true,
        mcc: 246,
        mnc: 2,
        lac: 0x1234,
        cid: 0x5678,
    };
    vec![
        encode::login(IMEI, Some(0x0320), 1),
        gps.frame(2),
        encode::heartbeat(0x46, 4, 3, 3),
        h("7979000e9b0332382e33a1e60d0a0289be490d0a"),
    ]
}

#[test]
fn every_prefix_yields_only_whole_frames_in_order() {
    let frames_in = stream();
    let bytes: Vec<u8> = frames_in.concat();
    for k in 0..=bytes.len() {
        let mut s = session();
        let (got, left) = frames(&mut s, &bytes[..k]);
        assert_eq!(got, frames_in[..got.len()].to_vec(), "prefix {k}");
        let used: usize = got.iter().map(Vec::len).sum();
        assert_eq!(used + left, k, "prefix {k}: nothing dropped");
    }
    let mut s = session();
    assert_eq!(frames(&mut s, &bytes).0, frames_in);
}

#[test]
fn byte_by_byte_feeding_cuts_the_same_frames() {
    let frames_in = stream();
    let bytes: Vec<u8> = frames_in.concat();
    let mut s = session();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in bytes {
        buf.extend_from_slice(&[b]);
        while let Some(f) = s.frame(&mut buf).unwrap() {
            got.push(f.to_vec());
        }
    }
    assert_eq!(got, frames_in);
}

#[test]
fn a_length_that_lies_falls_back_to_the_terminator() {
    // Wi-Fi packet with length 0 (Traccar's frame decoder test), then a heartbeat.
    let wifi = h("787800691709261259400700cc0400d376714600d37a3d5000d37a3c5000d393505a00d3765d5a00d376735a00d32e6b640d0a");
    let hb = encode::heartbeat(0x46, 4, 3, 7);
    let mut s = session();
    let (got, left) = frames(&mut s, &[wifi.clone(), hb.clone()].concat());
    assert_eq!(got, vec![wifi.clone(), hb]);
    assert_eq!(left, 0);
    // The decoder rejects it: it carries no serial number or CRC.
    let err = decode(&wifi).unwrap_err();
    assert!(matches!(err.error.kind(), "checksum" | "length"), "{err:?}");
    assert_eq!(err.reply, None);
    assert!(!err.close);
}

#[test]
fn garbage_is_handed_on_up_to_the_next_start_marker_and_rejected() {
    let hb = encode::heartbeat(0x46, 4, 3, 7);
    let mut bytes = b"GET / HTTP/1.1\r\n".to_vec();
    bytes.extend_from_slice(&hb);
    let mut s = session();
    let (got, left) = frames(&mut s, &bytes);
    assert_eq!(got, vec![b"GET / HTTP/1.1\r\n".to_vec(), hb]);
    assert_eq!(left, 0);
    let err = decode(&got[0]).unwrap_err();
    assert_eq!(err.error.kind(), "malformed");
    // A lone trailing start byte is kept: it may begin the next frame.
    let mut s = session();
    assert_eq!(
        frames(&mut s, &[0x00, 0x01, 0x78]),
        (vec![vec![0x00, 0x01]], 1)
    );
}

#[test]
fn a_declared_length_beyond_the_limit_closes_the_stream() {
    let mut s = super::super::Session::new(&SessionConfig {
        max_frame_bytes: 100,
        ..SessionConfig::new(Transport::Tcp)
    });
    let mut buf = BytesMut::from(&[0x79, 0x79, 0xff, 0xff, 0x70][..]);
    assert!(matches!(
        s.frame(&mut buf),
        Err(FrameError::TooLarge {
            declared: 65541,
            max: 100
        })
    ));
    // A 78 78 frame with no terminator in sight is bounded too.
    let mut bytes = vec![0x78, 0x78, 0x10, 0x12];
    bytes.extend(std::iter::repeat_n(0x55, 200));
    let mut buf = BytesMut::from(&bytes[..]);
    assert!(matches!(
        s.frame(&mut buf),
        Err(FrameError::TooLarge { .. })
    ));
}
