//! The TCP framer: every prefix of a valid stream yields only whole, right
//! frames; the `$` length latches from evidence or a whole segment; text is
//! bounded by the limit; noise between frames is skipped.

use super::*;
use crate::protocol::FrameError;

const TEXT: &[u8] =
    b"*HQ,4210051415,V1,164549,A,0956.3869,N,08406.7068,W,000.00,000,221215,FFFFFBFF#";
const SHORT: &str = "2441060116601245431311165035313006004318210e000000fffffbffff0024";
const LONG: &str =
    "24410600082621532131081504419390060740418306000000fffffbfdff0015060000002c02dc0c000000001f";
const X: &str = "5800009814991024031101175540227006012321670c000095fffffbffff0033";

/// Frames of every prefix of `stream` are a prefix of `expected`, and no
/// prefix errors.
fn assert_every_prefix_is_safe(stream: &[u8], expected: &[Vec<u8>]) {
    for n in 0..=stream.len() {
        let (got, _) = frames(&mut session(Transport::Tcp), &stream[..n]);
        assert!(got.len() <= expected.len(), "prefix {n}: too many frames");
        for (g, e) in got.iter().zip(expected) {
            assert_eq!(hex::encode(g), hex::encode(e), "prefix {n}");
        }
    }
    let (got, rest) = frames(&mut session(Transport::Tcp), stream);
    assert_eq!(got, expected);
    assert!(rest.is_empty());
}

#[test]
fn every_prefix_of_a_mixed_short_record_stream_is_safe() {
    let stream = [
        h(SHORT),
        TEXT.to_vec(),
        b"\r\n".to_vec(),
        h(SHORT),
        h(X),
        TEXT.to_vec(),
    ]
    .concat();
    let expected = vec![h(SHORT), TEXT.to_vec(), h(SHORT), h(X), TEXT.to_vec()];
    assert_every_prefix_is_safe(&stream, &expected);
}

#[test]
fn every_prefix_of_back_to_back_records_is_safe() {
    let stream = [h(SHORT), h(SHORT), h(SHORT)].concat();
    assert_every_prefix_is_safe(&stream, &[h(SHORT), h(SHORT), h(SHORT)]);
}

#[test]
fn every_prefix_is_safe_once_the_long_length_is_latched() {
    let mut s = session(Transport::Tcp);
    let (first, _) = frames(&mut s, &h(LONG));
    assert_eq!(first, [h(LONG)]);
    let stream = [h(LONG), TEXT.to_vec(), h(LONG)].concat();
    for n in 0..=stream.len() {
        let mut latched = session(Transport::Tcp);
        latched.binary_len = Some(45);
        let (got, _) = frames(&mut latched, &stream[..n]);
        let expected = [h(LONG), TEXT.to_vec(), h(LONG)];
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(g, e, "prefix {n}");
        }
    }
}

#[test]
fn the_record_length_latches_from_the_next_record() {
    let long2 = [h(LONG), h(LONG)].concat();
    let mut s = session(Transport::Tcp);
    let (got, _) = frames(&mut s, &long2);
    assert_eq!(got, [h(LONG), h(LONG)]);
    assert_eq!(s.binary_len, Some(45));
    // Later records on the stream use the latched length, even split up.
    let (got, rest) = frames(&mut s, &h(LONG)[..40]);
    assert!(got.is_empty());
    assert_eq!(rest.len(), 40);
}

#[test]
fn a_42_byte_record_is_the_imei_form() {
    let rec =
        h("2435248308419329301047591808172627335900074412294e024138feffffffff01120064ba73005ecc");
    assert_eq!(rec.len(), 42);
    let mut s = session(Transport::Tcp);
    assert_eq!(frames(&mut s, &rec).0, std::slice::from_ref(&rec));
    assert_eq!(s.binary_len, Some(42));
}

#[test]
fn without_evidence_the_length_defaults_to_32_after_52_bytes() {
    let mut bytes = h(SHORT);
    bytes.extend(std::iter::repeat_n(0x11, 20)); // 52 bytes, no boundary
    let mut s = session(Transport::Tcp);
    let mut buf = BytesMut::from(&bytes[..]);
    assert_eq!(s.frame(&mut buf).unwrap().unwrap().to_vec(), h(SHORT));
    assert_eq!(s.binary_len, Some(32));
}

#[test]
fn noise_and_line_ends_between_frames_are_skipped() {
    let stream = [
        b"\r\n\x00garbage".to_vec(),
        TEXT.to_vec(),
        b"\r\n\r\n".to_vec(),
        TEXT.to_vec(),
    ]
    .concat();
    let (got, rest) = frames(&mut session(Transport::Tcp), &stream);
    assert_eq!(got, [TEXT.to_vec(), TEXT.to_vec()]);
    assert!(rest.is_empty());
    // Pure noise is dropped, so it never grows the buffer.
    let (got, rest) = frames(&mut session(Transport::Tcp), b"hello world");
    assert!(got.is_empty() && rest.is_empty());
}

#[test]
fn text_over_the_limit_is_too_large() {
    let mut s = super::super::Session::new(&SessionConfig {
        max_frame_bytes: 16,
        ..SessionConfig::new(Transport::Tcp)
    });
    let mut buf = BytesMut::from(&b"*HQ,1234567890,V1,no end yet"[..]);
    assert!(matches!(
        s.frame(&mut buf),
        Err(FrameError::TooLarge { max: 16, .. })
    ));
    let mut buf = BytesMut::from(&b"*HQ,12345678901234567#"[..]);
    assert!(matches!(
        s.frame(&mut buf),
        Err(FrameError::TooLarge {
            declared: 22,
            max: 16
        })
    ));
    // At the limit: fine.
    let mut buf = BytesMut::from(&b"*HQ,1234567890,#"[..]);
    assert_eq!(s.frame(&mut buf).unwrap().unwrap().len(), 16);
}
