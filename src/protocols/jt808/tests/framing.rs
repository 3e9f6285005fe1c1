//! The framer: prefixes wait, frames come out unescaped, garbage is
//! skipped, the limit holds.

use super::*;
use crate::protocol::FrameError;

/// Captured frames (Traccar vectors): heartbeat, registration, text.
fn captured() -> Vec<Vec<u8>> {
    vec![
        h("7e0002000004304832546500b7ca7e"),
        h("7e0100002d013511221122000500000000373031303748422d52303347424400000000000000000000003233363631303402cbd5424136383630387e"),
        b"(740190311185,1,001,ELOCK,3,529439)".to_vec(),
        h("7e307d02087d01557e"),
    ]
}

#[test]
fn every_prefix_waits_and_consumes_nothing() {
    for frame in captured() {
        for n in 0..frame.len() {
            let mut buf = BytesMut::from(&frame[..n]);
            let r = session().frame(&mut buf);
            assert!(matches!(r, Ok(None)), "prefix {n}: {r:?}");
            assert_eq!(buf.len(), n);
        }
    }
}

#[test]
fn frames_come_out_unescaped_in_order() {
    let stream: Vec<u8> = captured().concat();
    let mut buf = BytesMut::from(stream.as_slice());
    let mut s = session();
    let mut out = Vec::new();
    while let Some(f) = s.frame(&mut buf).unwrap() {
        out.push(f.to_vec());
    }
    assert_eq!(out.len(), 4);
    assert_eq!(out[0], captured()[0]);
    assert_eq!(out[2], captured()[2]);
    assert_eq!(out[3], h("7e307e087d557e"));
    assert!(buf.is_empty());
}

#[test]
fn every_split_of_a_stream_gives_the_same_frames() {
    let stream: Vec<u8> = captured().concat();
    let whole: Vec<Vec<u8>> = {
        let mut buf = BytesMut::from(stream.as_slice());
        let mut s = session();
        std::iter::from_fn(|| s.frame(&mut buf).unwrap().map(|f| f.to_vec())).collect()
    };
    for cut in 0..stream.len() {
        let mut s = session();
        let mut buf = BytesMut::from(&stream[..cut]);
        let mut got = Vec::new();
        while let Some(f) = s.frame(&mut buf).unwrap() {
            got.push(f.to_vec());
        }
        buf.extend_from_slice(&stream[cut..]);
        while let Some(f) = s.frame(&mut buf).unwrap() {
            got.push(f.to_vec());
        }
        assert_eq!(got, whole, "cut at {cut}");
    }
}

#[test]
fn garbage_and_doubled_delimiters_are_skipped() {
    let mut buf = BytesMut::from(&h("2424ff7e7e307d02087d01557e")[..]);
    let f = session().frame(&mut buf).unwrap().unwrap();
    assert_eq!(f.as_ref(), h("7e307e087d557e").as_slice());
    let mut buf = BytesMut::from(&b"noise"[..]);
    assert!(matches!(session().frame(&mut buf), Ok(None)));
    assert!(
        buf.is_empty(),
        "bytes that cannot start a frame are dropped"
    );
}

#[test]
fn the_alternative_delimiter_unescapes_its_own_way() {
    let mut buf = BytesMut::from(&h("e7aae601e602bb3e013e02e7")[..]);
    let f = session().frame(&mut buf).unwrap().unwrap();
    assert_eq!(f.as_ref(), h("e7aae6e7bb3e3de7").as_slice());
}

#[test]
fn a_frame_without_end_beyond_the_limit_closes() {
    let mut s = super::super::Session::new(&SessionConfig {
        max_frame_bytes: 16,
        ..SessionConfig::new(Transport::Tcp)
    });
    let mut buf = BytesMut::from(&[0x7e; 1][..]);
    buf.extend_from_slice(&[0x11; 20]);
    assert!(matches!(
        s.frame(&mut buf),
        Err(FrameError::TooLarge { .. })
    ));
}
