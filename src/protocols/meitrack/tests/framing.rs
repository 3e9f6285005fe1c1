//! The framer: every prefix waits, whole frames come out exactly, the
//! limit is enforced from the header, and garbage closes the stream.

use bytes::BytesMut;

use super::*;
use crate::protocol::FrameError;

fn frames() -> Vec<Vec<u8>> {
    let fix = super::properties::sample();
    vec![
        b"$$N127,863071013803066,AAA,35,-1.302680,36.852135,150409211026,A,9,0,0.1,0,5,1653,4096,32648,639|02|1004|90C,0000,0|0|0|3FF|300,*7C\r\n".to_vec(),
        encode::frame(b'X', IMEI, "CCC", &encode::ccc(&[fix.clone(), fix.clone()])),
        encode::frame(b'z', IMEI, "AAC", b"1"),
        encode::frame(b'Y', IMEI, "CCE", &encode::cce(&[fix])),
    ]
}

#[test]
fn every_prefix_of_a_stream_yields_only_whole_frames() {
    let all = frames();
    let stream: Vec<u8> = all.concat();
    for n in 0..=stream.len() {
        let mut s = session();
        let mut buf = BytesMut::from(&stream[..n]);
        let mut got = Vec::new();
        loop {
            match s.frame(&mut buf) {
                Ok(Some(f)) => got.push(f.to_vec()),
                Ok(None) => break,
                Err(e) => panic!("prefix {n}: {e}"),
            }
        }
        assert!(got.len() <= all.len());
        for (g, e) in got.iter().zip(&all) {
            assert_eq!(g, e, "prefix {n}");
        }
        let whole: usize = all.iter().take(got.len()).map(Vec::len).sum();
        assert_eq!(
            buf.len(),
            n - whole,
            "a waiting framer consumes nothing more"
        );
    }
}

#[test]
fn stray_line_ends_are_dropped_and_garbage_closes() {
    let mut s = session();
    let mut buf = BytesMut::from(&b"\r\n$$z27,861451040910625,AAC,1*D3\r\n"[..]);
    assert_eq!(
        s.frame(&mut buf).unwrap().as_deref(),
        Some(&b"$$z27,861451040910625,AAC,1*D3\r\n"[..])
    );
    for bad in [&b"GET / HTTP/1.1"[..], b"$x", b"$$A12x", b"$$A1234567,"] {
        let mut buf = BytesMut::from(bad);
        assert!(
            matches!(session().frame(&mut buf), Err(FrameError::Garbage(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn declared_length_over_the_limit_fails_before_the_bytes_arrive() {
    let mut s = super::super::Session::new(&SessionConfig {
        max_frame_bytes: 100,
        ..SessionConfig::new(Transport::Tcp)
    });
    let mut buf = BytesMut::from(&b"$$A98,"[..]);
    assert!(matches!(
        s.frame(&mut buf),
        Err(FrameError::TooLarge {
            declared: 103,
            max: 100
        })
    ));
    let mut buf = BytesMut::from(&b"$$A95,"[..]);
    assert!(matches!(s.frame(&mut buf), Ok(None)));
}
