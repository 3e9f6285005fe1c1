//! Bad input: what is rejected, with which error, reply and close decision.

use super::*;
use crate::protocol::{DecodeError, MessageKind};

const RESEND: &[u8] = &[0, 0, 0, 0];

/// A valid one-record codec 8 packet (Traccar capture).
fn packet() -> Vec<u8> {
    h("000000000000002b080100000140d4e3ec6e000cc661d01674a5e0fffc00000900000004020100f0000242322318000000000100007a04")
}

/// The data field of `packet()`.
fn data() -> Vec<u8> {
    let p = packet();
    p[8..p.len() - 4].to_vec()
}

fn assert_resend(r: &Rejected, kind: &str) {
    assert_eq!(r.error.kind(), kind, "{r:?}");
    assert_eq!(r.reply.as_deref(), Some(RESEND), "{r:?}");
    assert!(!r.close, "{r:?}");
}

#[test]
fn data_before_login_closes_without_reply() {
    let r = session(Transport::Tcp)
        .decode(&packet(), &ctx())
        .unwrap_err();
    assert_eq!(r, Rejected::fatal(DecodeError::NotIdentified));
}

#[test]
fn wrong_imei_length_is_refused_and_closes() {
    // Declares 15 bytes, carries 14.
    let r = session(Transport::Tcp)
        .decode(&h("000f3335363330373034323434313031"), &ctx())
        .unwrap_err();
    assert_eq!(
        r.error,
        DecodeError::Length {
            declared: 15,
            actual: 14
        }
    );
    assert_eq!(r.reply.as_deref(), Some(&[0x00][..]));
    assert!(r.close);
    // Declares 15, carries 16.
    let r = session(Transport::Tcp)
        .decode(&h("000f33353633303730343234343130313333"), &ctx())
        .unwrap_err();
    assert_eq!(
        r.error,
        DecodeError::Length {
            declared: 15,
            actual: 16
        }
    );
}

#[test]
fn unprintable_imei_is_refused_and_closes() {
    let mut s = session(Transport::Tcp);
    let r = s.decode(&h("00033320ff"), &ctx()).unwrap_err();
    assert_eq!(r.reply.as_deref(), Some(&[0x00][..]));
    assert!(r.close);
    let r = s.decode(&h("0003332033"), &ctx()).unwrap_err();
    assert!(matches!(r.error, DecodeError::DeviceId(_)), "{r:?}");
    assert_eq!(s.device(), None, "a refused login identifies nothing");
}

#[test]
fn crc_mismatch_asks_for_a_resend_and_the_session_continues() {
    let mut bad = packet();
    let n = bad.len();
    bad[n - 1] ^= 0x01;
    let mut s = logged_in();
    let r = s.decode(&bad, &ctx()).unwrap_err();
    assert_eq!(
        r.error,
        DecodeError::Checksum {
            carried: 0x7a05,
            computed: 0x7a04
        }
    );
    assert_resend(&r, "checksum");
    // A flipped data byte: same outcome.
    let mut bad = packet();
    bad[20] ^= 0x80;
    assert_resend(&s.decode(&bad, &ctx()).unwrap_err(), "checksum");
    // The resent packet is accepted on the same session.
    let d = s.decode(&packet(), &ctx()).unwrap();
    assert_eq!(d.kind, MessageKind::Data);
    assert_eq!(d.reply.accept.as_deref(), Some(&[0, 0, 0, 1][..]));
}

#[test]
fn crc_upper_half_must_be_zero() {
    let mut bad = packet();
    let n = bad.len();
    bad[n - 4] = 0x01;
    assert_resend(&decode_tcp(&bad).unwrap_err(), "checksum");
}

#[test]
fn truncated_or_padded_packets_are_length_errors() {
    let p = packet();
    for cut in [9, 12, 20, p.len() - 1] {
        let r = decode_tcp(&p[..cut]).unwrap_err();
        assert_resend(&r, "length");
    }
    let mut padded = p.clone();
    padded.push(0);
    assert_eq!(
        decode_tcp(&padded).unwrap_err().error,
        DecodeError::Length {
            declared: 43,
            actual: 44
        }
    );
    // Shorter than the header itself.
    assert_resend(&decode_tcp(&p[..5]).unwrap_err(), "malformed");
}

#[test]
fn empty_data_field_is_rejected_for_a_resend() {
    let r = decode_tcp(&encode::tcp_packet(&[])).unwrap_err();
    assert_resend(&r, "malformed");
    let r = decode_tcp(&encode::tcp_packet(&[0x08, 0x00])).unwrap_err();
    assert_resend(&r, "malformed");
}

#[test]
fn record_counts_that_disagree_ask_for_a_resend() {
    let mut d = data();
    let n = d.len();
    d[n - 1] = 2;
    let r = decode_tcp(&encode::tcp_packet(&d)).unwrap_err();
    assert_resend(&r, "malformed");
    assert!(r.error.to_string().contains("record count"), "{}", r.error);
}

#[test]
fn unknown_codec_is_skipped_without_reply() {
    let mut d = data();
    d[0] = 0x0E;
    let r = decode_tcp(&encode::tcp_packet(&d)).unwrap_err();
    assert_eq!(
        r,
        Rejected::skip(DecodeError::Unsupported {
            what: "codec",
            value: "0x0e".into()
        })
    );
}

#[test]
fn well_formed_but_unparseable_records_are_skipped_without_reply() {
    // Both counts say 2, one record follows.
    let mut d = data();
    let n = d.len();
    d[1] = 2;
    d[n - 1] = 2;
    let r = decode_tcp(&encode::tcp_packet(&d)).unwrap_err();
    assert_eq!(r.error.kind(), "malformed");
    assert_eq!(r.reply, None);
    assert!(!r.close);
    // One byte too many after the record. (A 00 there would be a valid
    // empty 16-byte group of an extended firmware, and is accepted.)
    let mut d = data();
    d.insert(d.len() - 1, 5);
    let r = decode_tcp(&encode::tcp_packet(&d)).unwrap_err();
    assert!(
        matches!(r.error, DecodeError::Malformed { offset, .. } if offset == 8 + d.len() - 2),
        "{r:?}"
    );
}

#[test]
fn an_io_group_longer_than_the_bytes_left_names_the_read_that_fails() {
    // data(): N1 count at 28 (2 elements from 29), N2 count at 33 (2 from
    // 34), N4 count at 40, N8 count at 41, second record count at 42; the
    // frame puts the data field at offset 8.
    for (at, count, offset) in [
        // Three 3-byte elements from 34: the third's value has one byte.
        (33, 3, 8 + 41),
        // 200 2-byte elements from 29: the seventh's value has none.
        (28, 200, 8 + 42),
    ] {
        let mut d = data();
        d[at] = count;
        let r = decode_tcp(&encode::tcp_packet(&d)).unwrap_err();
        assert_eq!(
            r.error,
            DecodeError::Malformed {
                what: "IO value",
                offset
            },
            "count {count} at {at}"
        );
        assert_eq!(r.reply, None);
    }
}

#[test]
fn a_record_cut_inside_its_fixed_fields_names_the_field() {
    // Timestamp, priority, longitude and two of the latitude's four bytes.
    let mut d = data()[..2 + 15].to_vec();
    d.push(1);
    let r = decode_tcp(&encode::tcp_packet(&d)).unwrap_err();
    assert_eq!(
        r.error,
        DecodeError::Malformed {
            what: "latitude",
            offset: 8 + 2 + 13
        }
    );
}

#[test]
fn a_timestamp_beyond_chrono_is_malformed_not_a_panic() {
    let mut d = data();
    d[2..10].copy_from_slice(&u64::MAX.to_be_bytes());
    let r = decode_tcp(&encode::tcp_packet(&d)).unwrap_err();
    assert!(
        matches!(r.error, DecodeError::Malformed { what, offset: 10 } if what.contains("timestamp")),
        "{r:?}"
    );
}

#[test]
fn out_of_range_coordinates_become_a_report() {
    let mut d = data();
    // Latitude 0x7fffffff = 214.7°.
    d[15..19].copy_from_slice(&i32::MAX.to_be_bytes());
    let r = decode_tcp(&encode::tcp_packet(&d)).unwrap();
    assert!(r.positions.is_empty());
    assert_eq!(r.reports.len(), 1);
    assert_eq!(
        r.reply.accept.as_deref(),
        Some(&[0, 0, 0, 1][..]),
        "the record is still delivered"
    );
}

#[test]
fn udp_datagram_errors_get_no_reply() {
    let good = h("003DCAFE0105000F33353230393330383634303336353508010000016B4F815B30010000000000000000000000000000000103021503010101425DBC000001");
    let mut s = session(Transport::Udp);
    assert!(s.decode(&good, &ctx()).is_ok());
    // Length field disagrees with the datagram.
    let r = s.decode(&good[..good.len() - 1], &ctx()).unwrap_err();
    assert_eq!(
        r,
        Rejected::skip(DecodeError::Length {
            declared: 61,
            actual: 60
        })
    );
    // IMEI length runs past the datagram.
    let mut bad = good.clone();
    bad[7] = 0x60;
    let r = s.decode(&bad, &ctx()).unwrap_err();
    assert!(
        matches!(
            r.error,
            DecodeError::Malformed {
                what: "IMEI",
                offset: 8
            }
        ),
        "{r:?}"
    );
    assert_eq!(r.reply, None);
    // Counts disagree: no resend shortcut over UDP.
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 1] = 2;
    let r = s.decode(&bad, &ctx()).unwrap_err();
    assert_eq!(r.reply, None);
    assert!(!r.close);
    // Too short for a header.
    assert!(s.decode(&[0x00], &ctx()).is_err());
    assert!(s.decode(&[], &ctx()).is_err());
}
