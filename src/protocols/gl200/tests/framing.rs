//! The framer on every prefix of a stream mixing all frame shapes.

use super::*;

/// A legacy binary `+EVT` (from the vectors), a text report, a heartbeat
/// and a Protocol Pro frame, back to back.
fn stream() -> (Vec<u8>, Vec<Vec<u8>>) {
    let evt = hex::decode(
        "2b4556540c00fc1fbf005c4501010108563254030003430564312a41090100000000003f007dff75a11a025c6a7807e1070a14041202680003189c1ac500000000000000000000000000000000000007e1070b041134054e5c6e0d0a",
    )
    .unwrap_or_default();
    let text = b"+RESP:GTFRI,060100,135790246811220,,,10,1,1,4.3,92,70.0,121.354335,31.222073,20090214013254,0460,0000,18d8,6141,00,2000.0,,,,80,210100,,,,20090214093254,11F0$".to_vec();
    let hbd = b"+ACK:GTHBD,1A0401,135790246811220,,20100214093254,11F0$".to_vec();
    let pro = hex::decode("2b000038000865134050947226820300030000216a3ed6f101895000521629fa8b28f402ac1a8e6a3ed6f100001600000010f505010ff824").unwrap_or_default();
    let mut all = Vec::new();
    let mut expected = Vec::new();
    for (bytes, frame) in [
        (evt.clone(), evt),
        (text.clone(), text[..text.len() - 1].to_vec()),
        (b"\r\n".to_vec(), Vec::new()),
        (hbd.clone(), hbd[..hbd.len() - 1].to_vec()),
        (pro.clone(), pro),
    ] {
        all.extend_from_slice(&bytes);
        if !frame.is_empty() {
            expected.push(frame);
        }
    }
    (all, expected)
}

#[test]
fn every_prefix_yields_only_whole_leading_frames() {
    let (all, expected) = stream();
    for n in 0..=all.len() {
        let got = frames(&mut session(Transport::Tcp, None), &all[..n])
            .unwrap_or_else(|e| panic!("prefix {n}: {e}"));
        assert!(got.len() <= expected.len(), "prefix {n}");
        assert_eq!(got, expected[..got.len()], "prefix {n}");
    }
    let got = frames(&mut session(Transport::Tcp, None), &all).unwrap_or_default();
    assert_eq!(got, expected);
}

#[test]
fn byte_by_byte_gives_the_same_frames() {
    let (all, expected) = stream();
    let mut s = session(Transport::Tcp, None);
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in all {
        buf.extend_from_slice(&[b]);
        while let Ok(Some(f)) = s.frame(&mut buf) {
            got.push(f.to_vec());
        }
    }
    assert_eq!(got, expected);
}

#[test]
fn garbage_and_oversize_close_the_stream() {
    let mut s = session(Transport::Tcp, None);
    assert!(matches!(
        frames(&mut s, b"GET / HTTP/1.1\r\n"),
        Err(FrameError::Garbage(_))
    ));
    let mut c = SessionConfig::new(Transport::Tcp);
    c.max_frame_bytes = 64;
    let mut small = Session::new(&c);
    let long = format!("+RESP:GTFRI,{}", "1,".repeat(40));
    assert!(matches!(
        frames(&mut small, long.as_bytes()),
        Err(FrameError::TooLarge { .. })
    ));
    // A binary length below its own header cannot be a frame.
    assert!(matches!(
        frames(&mut s, b"+RSP\x00\x00\x00\x00\x00\x00\x03"),
        Err(FrameError::Garbage(_))
    ));
    // A binary length over the limit closes before its bytes arrive.
    assert!(matches!(
        frames(&mut small, b"+RSP\x00\x00\x00\x00\x00\xff\xff"),
        Err(FrameError::TooLarge { .. })
    ));
}

#[test]
fn gt300_text_ends_at_nul() {
    let mut s = session(Transport::Tcp, None);
    let got = frames(
        &mut s,
        b"+RESP:GTTRI,135790246811220,1,0\0+ACK:GTHBD,1A0401,135790246811220,,20100214093254,11F0$",
    )
    .unwrap_or_default();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0], b"+RESP:GTTRI,135790246811220,1,0");
}
