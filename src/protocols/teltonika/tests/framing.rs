//! The TCP framer: every prefix waits, whole frames come out exactly, the
//! limit is enforced from the header, and garbage closes the stream.

use super::*;

/// Captured frames (Traccar vectors): login, codec 8 AVL, keepalive.
fn captured() -> Vec<Vec<u8>> {
    vec![
        h("000f333536333037303432343431303133"),
        h("000000000000004c08010000016818d500580009c28d9f1cb3757a00be00c60f0053000f06f0011503c80001011d00fc0007423799180053cdf80dce426f430f88190bb8560bb802f100005aa110002887e000010000ee8d"),
        h("ff"),
    ]
}

#[test]
fn every_prefix_needs_more_bytes_and_the_whole_frame_comes_out() {
    for frame in captured() {
        for n in 0..frame.len() {
            let (r, buf) = frame_once(&mut session(Transport::Tcp), &frame[..n]);
            assert!(
                matches!(r, Ok(None)),
                "prefix {n} of {}: {r:?}",
                hex::encode(&frame)
            );
            assert_eq!(buf.len(), n, "a waiting framer consumes nothing");
        }
        let (r, buf) = frame_once(&mut session(Transport::Tcp), &frame);
        assert_eq!(r.unwrap().as_deref(), Some(frame.as_slice()));
        assert!(buf.is_empty());
    }
}

#[test]
fn back_to_back_frames_come_out_in_order_and_leave_the_rest() {
    let frames = captured();
    let mut stream: Vec<u8> = frames.concat();
    stream.extend_from_slice(&[0x00, 0x00, 0x00]); // start of the next packet
    let mut s = session(Transport::Tcp);
    let mut buf = BytesMut::from(stream.as_slice());
    for f in &frames {
        assert_eq!(s.frame(&mut buf).unwrap().as_deref(), Some(f.as_slice()));
    }
    assert!(s.frame(&mut buf).unwrap().is_none());
    assert_eq!(buf.as_ref(), &[0, 0, 0]);
}

#[test]
fn declared_length_over_the_limit_fails_before_the_bytes_arrive() {
    let mut s = super::super::Session::new(&SessionConfig {
        transport: Transport::Tcp,
        max_frame_bytes: 1024,
        ..SessionConfig::new(Transport::Tcp)
    });
    // 1013 data bytes + 12 = 1025 > 1024; only the 8-byte header is there.
    let (r, _) = frame_once(&mut s, &h("00000000000003f5"));
    assert!(
        matches!(
            r,
            Err(FrameError::TooLarge {
                declared: 1025,
                max: 1024
            })
        ),
        "{r:?}"
    );
    // Exactly at the limit is fine (and waits for the bytes).
    let (r, _) = frame_once(&mut s, &h("00000000000003f4"));
    assert!(matches!(r, Ok(None)), "{r:?}");
}

#[test]
fn the_largest_u32_length_does_not_overflow() {
    let (r, _) = frame_once(&mut session(Transport::Tcp), &h("00000000ffffffff"));
    assert!(matches!(r, Err(FrameError::TooLarge { .. })), "{r:?}");
}

#[test]
fn an_imei_packet_over_the_limit_is_too_large() {
    let mut s = super::super::Session::new(&SessionConfig {
        transport: Transport::Tcp,
        max_frame_bytes: 10,
        ..SessionConfig::new(Transport::Tcp)
    });
    let (r, _) = frame_once(&mut s, &h("000f33"));
    assert!(
        matches!(
            r,
            Err(FrameError::TooLarge {
                declared: 17,
                max: 10
            })
        ),
        "{r:?}"
    );
}

#[test]
fn bytes_that_cannot_start_a_frame_are_garbage() {
    for (bytes, what) in [
        ("47455420", "text (an HTTP request)"),
        ("01", "a first byte other than 00 or ff"),
        ("0041", "an IMEI length over 64"),
        ("000001", "a preamble with a non-zero third byte"),
        ("00000000", "(control: a valid preamble prefix)"),
        ("00000010", "a preamble with a non-zero fourth byte"),
    ] {
        let (r, buf) = frame_once(&mut session(Transport::Tcp), &h(bytes));
        if what.starts_with("(control") {
            assert!(matches!(r, Ok(None)), "{what}: {r:?}");
        } else {
            assert!(matches!(r, Err(FrameError::Garbage(_))), "{what}: {r:?}");
            assert_eq!(buf.len(), bytes.len() / 2, "{what}: nothing consumed");
        }
    }
}

#[test]
fn a_keepalive_is_its_own_frame_even_before_a_login() {
    let mut s = session(Transport::Tcp);
    let mut buf = BytesMut::from(&h("ff000f313233343536373839303132333435")[..]);
    assert_eq!(s.frame(&mut buf).unwrap().as_deref(), Some(&[0xff][..]));
    assert_eq!(
        s.frame(&mut buf).unwrap().as_deref(),
        Some(&h("000f313233343536373839303132333435")[..])
    );
}
