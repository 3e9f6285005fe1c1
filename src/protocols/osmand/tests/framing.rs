//! The request framer: every prefix waits, requests come out whole and in
//! order (keep-alive pipelining), limits hold, chunked and garbage are cut
//! so the decoder can answer.

use bytes::BytesMut;
use proptest::prelude::*;

use super::*;
use crate::protocol::FrameError;

fn requests() -> Vec<String> {
    vec![
        get("id=123456&lat=60.0&lon=30.0&timestamp=1377177267"),
        post(
            "application/x-www-form-urlencoded",
            "id=123456&lat=60.5&lon=30.5",
        ),
        post(
            "application/json",
            r#"{"device_id":"1","location":{"coords":{"latitude":1,"longitude":2}}}"#,
        ),
    ]
}

#[test]
fn every_prefix_of_a_pipelined_stream_yields_only_whole_requests() {
    let all = requests();
    let stream = all.concat();
    for n in 0..=stream.len() {
        let mut s = session();
        let mut buf = BytesMut::from(&stream.as_bytes()[..n]);
        let mut got = Vec::new();
        while let Some(f) = s.frame(&mut buf).unwrap() {
            got.push(String::from_utf8(f.to_vec()).unwrap());
        }
        assert!(got.len() <= all.len());
        for (g, e) in got.iter().zip(&all) {
            assert_eq!(g, e, "prefix {n}");
        }
        let whole: usize = all.iter().take(got.len()).map(String::len).sum();
        assert_eq!(buf.len(), n - whole);
    }
}

#[test]
fn limits_close_the_stream() {
    let mut s = super::super::Session::new(&SessionConfig {
        max_frame_bytes: 64,
        ..SessionConfig::new(Transport::Tcp)
    });
    let mut buf = BytesMut::from(&b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n"[..]);
    assert!(matches!(
        s.frame(&mut buf),
        Err(FrameError::TooLarge {
            declared: 140,
            max: 64
        })
    ));
    let mut buf = BytesMut::from(vec![b'a'; 65].as_slice());
    assert!(matches!(
        s.frame(&mut buf),
        Err(FrameError::TooLarge { .. })
    ));
}

#[test]
fn chunked_bodies_get_411_and_close() {
    let req = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nid=12\r\n0\r\n\r\n";
    let mut s = session();
    let mut buf = BytesMut::from(req.as_bytes());
    let head = s.frame(&mut buf).unwrap().unwrap();
    assert!(head.ends_with(b"chunked\r\n\r\n"));
    let r = s.decode(&head, &ctx()).unwrap_err();
    assert!(r.close);
    assert!(r
        .reply
        .unwrap()
        .starts_with(b"HTTP/1.1 411 Length Required\r\n"));
}

#[test]
fn garbage_gets_400_and_close() {
    let mut s = session();
    let mut buf = BytesMut::from(&b"\x16\x03\x01 hello\r\n\r\nrest"[..]);
    let head = s.frame(&mut buf).unwrap().unwrap();
    assert_eq!(head.as_ref(), b"\x16\x03\x01 hello\r\n\r\n");
    let r = s.decode(&head, &ctx()).unwrap_err();
    assert!(r.close);
    assert_eq!(
        r.reply.as_deref(),
        Some(&b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"[..])
    );
    let mut buf = BytesMut::from(&b"\x16\x03\x01 hello"[..]);
    assert!(
        s.frame(&mut buf).unwrap().is_none(),
        "waits for the head's end"
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut s = session();
        let _ = s.decode(&bytes, &ctx());
        let mut buf = BytesMut::from(bytes.as_slice());
        while let Ok(Some(f)) = s.frame(&mut buf) {
            let _ = s.decode(&f, &ctx());
        }
    }
}
