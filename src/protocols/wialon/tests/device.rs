//! The simulator's Wialon device: what it sends decodes, and it reads every
//! server answer as a real device would.

use bytes::BytesMut;

use super::{ctx, session};
use crate::protocol::device::{Answer, DeviceSide, Fix, Stage};
use crate::protocol::Session as _;

const DEVICE: super::super::device::Device = super::super::device::Device;

fn fix(lat: f64, lon: f64) -> Fix {
    DEVICE.quantize(Fix {
        fix_ms: 1_764_158_400_123,
        lat,
        lon,
        speed_kmh: 57,
        course: 359,
    })
}

#[test]
fn coordinates_at_a_whole_degree_never_carry_sixty_minutes() {
    // 52.9999999999° is 52° 59.999999994′: written as 53° 00.000000′; a
    // longitude a hair west of Greenwich rounds to 0, east.
    let f = fix(52.999_999_999_9, -0.000_000_000_1);
    let line = DEVICE.packet(1, &[f], 1);
    let text = String::from_utf8(line.clone()).unwrap();
    assert!(
        text.starts_with("#D#261125;120000;5300.000000;N;00000.000000;E;57;359;"),
        "{text}"
    );
    assert_eq!((f.lat, f.lon, f.fix_ms), (53.0, 0.0, 1_764_158_400_000));
    let d = {
        let mut s = session();
        s.decode(&DEVICE.login(1, 0).unwrap(), &ctx()).unwrap();
        s.decode(&line, &ctx()).unwrap()
    };
    assert_eq!(d.positions[0].lat, 53.0);
    assert_eq!(d.reply.accept.as_deref(), Some(&b"#AD#1\r\n"[..]));
}

#[test]
fn a_corrupted_message_is_answered_with_a_crc_error_the_device_resends_on() {
    let mut s = session();
    s.decode(&DEVICE.login(1, 0).unwrap(), &ctx()).unwrap();
    for fixes in [
        vec![fix(48.1, 11.5)],
        vec![fix(48.1, 11.5), fix(48.2, 11.6)],
    ] {
        let mut line = DEVICE.packet(1, &fixes, 1);
        // A digit of the first speed changed in transit.
        let at = line.windows(4).position(|w| w == b";57;").unwrap() + 1;
        line[at] = b'6';
        let r = s.decode(&line, &ctx()).unwrap_err();
        let mut wire = BytesMut::from(r.reply.as_deref().unwrap());
        let reply = DEVICE
            .next_reply(&mut wire, Stage::Packet)
            .unwrap()
            .unwrap();
        assert_eq!(
            DEVICE.answer(&reply, Stage::Packet, 1, fixes.len()),
            Answer::Refused,
            "{:?}",
            String::from_utf8_lossy(&reply)
        );
    }
}

#[test]
fn answers_read_as_a_device_reads_them() {
    let read = |wire: &[u8], stage, sent| {
        let mut buf = BytesMut::from(wire);
        let r = DEVICE.next_reply(&mut buf, stage).unwrap().unwrap();
        assert!(buf.is_empty());
        DEVICE.answer(&r, stage, 7, sent)
    };
    use Answer::*;
    assert_eq!(read(b"#AL#1\r\n", Stage::Login, 0), Accepted);
    assert_eq!(read(b"#AL#0\r\n", Stage::Login, 0), Refused);
    assert_eq!(read(b"#AD#1\r\n", Stage::Packet, 1), Accepted);
    assert_eq!(read(b"#AD#1\n", Stage::Packet, 1), Accepted);
    assert_eq!(read(b"#AD#-1\r\n", Stage::Packet, 1), Refused);
    assert_eq!(read(b"#AP#\r\n", Stage::Packet, 1), Unrelated);
    assert_eq!(read(b"#AB#3\r\n", Stage::Packet, 3), Accepted);
    assert_eq!(read(b"#AB#2\r\n", Stage::Packet, 3), Refused);
    assert_eq!(read(b"#AB#30\r\n", Stage::Packet, 3), Refused);
    assert_eq!(read(b"#AB#0\r\n", Stage::Packet, 3), Refused);
    assert_eq!(read(b"#AB#+3\r\n", Stage::Packet, 3), Refused);
    assert_eq!(read(b"#AB#\r\n", Stage::Packet, 3), Refused);
    assert_eq!(read(b"#AD#1\r\n", Stage::Packet, 3), Unrelated);
    // Half an answer waits for the rest; two answers come one by one.
    let mut buf = BytesMut::from(&b"#AD#"[..]);
    assert_eq!(DEVICE.next_reply(&mut buf, Stage::Packet), Ok(None));
    buf.extend_from_slice(b"1\r\n#AP#\r\n");
    let first = DEVICE.next_reply(&mut buf, Stage::Packet).unwrap().unwrap();
    assert_eq!(&first[..], b"#AD#1\r\n");
    let second = DEVICE.next_reply(&mut buf, Stage::Packet).unwrap().unwrap();
    assert_eq!(&second[..], b"#AP#\r\n");
    // Bytes no Wialon server sends.
    let mut buf = BytesMut::from(&b"HTTP/1.1 400\r\n"[..]);
    assert!(DEVICE.next_reply(&mut buf, Stage::Packet).is_err());
}
