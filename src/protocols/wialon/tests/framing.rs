//! The line framer: every prefix waits, lines come out whole, the limit holds.

use bytes::BytesMut;

use super::*;
use crate::protocol::FrameError;

const STREAM: &[u8] = b"#L#123456789012345;test\r\n#P#\r\n\r\n#SD#270413;205601;5544.6025;N;03739.6834;E;1;2;3;4\r\n#D#NA;NA;NA;NA;NA;NA;NA;NA;NA;NA\n";

fn lines() -> Vec<&'static [u8]> {
    vec![
        b"#L#123456789012345;test\r\n",
        b"#P#\r\n",
        b"#SD#270413;205601;5544.6025;N;03739.6834;E;1;2;3;4\r\n",
        b"#D#NA;NA;NA;NA;NA;NA;NA;NA;NA;NA\n",
    ]
}

#[test]
fn every_prefix_yields_only_whole_lines_in_order() {
    for n in 0..=STREAM.len() {
        let mut s = session();
        let mut buf = BytesMut::from(&STREAM[..n]);
        let mut got = Vec::new();
        while let Some(f) = s.frame(&mut buf).unwrap() {
            got.push(f.to_vec());
        }
        let expected = lines();
        assert!(got.len() <= expected.len());
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(g.as_slice(), *e, "prefix {n}");
        }
        let consumed: usize = n - buf.len();
        assert!(STREAM[..consumed].ends_with(b"\n") || consumed == 0);
    }
    let mut s = session();
    let mut buf = BytesMut::from(STREAM);
    for e in lines() {
        assert_eq!(s.frame(&mut buf).unwrap().as_deref(), Some(e));
    }
    assert!(buf.is_empty());
}

#[test]
fn a_line_over_the_limit_closes_the_stream() {
    let mut s = super::super::Session::new(&SessionConfig {
        max_frame_bytes: 16,
        ..SessionConfig::new(Transport::Tcp)
    });
    let mut buf = BytesMut::from(&b"#D#0123456789abcdef"[..]);
    assert!(matches!(
        s.frame(&mut buf),
        Err(FrameError::TooLarge { max: 16, .. })
    ));
    let mut buf = BytesMut::from(&b"#D#0123456789abcdef\r\n"[..]);
    assert!(matches!(
        s.frame(&mut buf),
        Err(FrameError::TooLarge { max: 16, .. })
    ));
}
