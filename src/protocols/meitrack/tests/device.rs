//! The simulator's Meitrack device: it matches the server's `CCC` answer
//! to its batch by flag and count, and refuses bytes no server sends.

use bytes::BytesMut;

use super::{ctx, session};
use crate::protocol::device::{Answer, DeviceSide, Fix, Stage};
use crate::protocol::Session as _;

const DEVICE: super::super::device::Device = super::super::device::Device;

fn fixes(n: usize) -> Vec<Fix> {
    (0..n)
        .map(|i| {
            DEVICE.quantize(Fix {
                fix_ms: 1_764_158_400_500 + i as i64 * 1000,
                lat: -33.868_820_4,
                lon: 151.209_295_5,
                speed_kmh: 80,
                course: 12,
            })
        })
        .collect()
}

/// The server's answer to batch `serial` of `n` records.
fn server_answer(n: usize, serial: u16) -> BytesMut {
    let d = session()
        .decode(&DEVICE.packet(42, &fixes(n), serial), &ctx())
        .unwrap();
    assert_eq!(d.positions.len(), n);
    assert_eq!(d.positions[0].lat, -33.868_82);
    assert_eq!(
        d.positions[0].fix_time.timestamp_millis(),
        1_764_158_400_000
    );
    BytesMut::from(d.reply.accept.as_deref().unwrap())
}

#[test]
fn the_answer_to_a_batch_is_matched_by_flag_and_count() {
    let mut wire = server_answer(3, 28);
    let reply = DEVICE
        .next_reply(&mut wire, Stage::Packet)
        .unwrap()
        .unwrap();
    assert!(wire.is_empty());
    assert_eq!(&reply[..3], b"@@C", "serial 28 flies flag C");
    assert_eq!(
        DEVICE.answer(&reply, Stage::Packet, 28, 3),
        Answer::Accepted
    );
    // Another batch's answer, or a count short of the batch.
    assert_eq!(
        DEVICE.answer(&reply, Stage::Packet, 29, 3),
        Answer::Unrelated
    );
    assert_eq!(DEVICE.answer(&reply, Stage::Packet, 28, 4), Answer::Refused);
}

#[test]
fn answers_that_are_not_a_ccc_acknowledgement_are_not_taken_for_one() {
    let mut wire = BytesMut::from(&b"@@z27,000000000000042,AAC,1*"[..]);
    let sum = crate::protocol::checksum::sum8(&wire);
    wire.extend_from_slice(format!("{sum:02X}\r\n").as_bytes());
    let reply = DEVICE
        .next_reply(&mut wire, Stage::Packet)
        .unwrap()
        .unwrap();
    assert_eq!(
        DEVICE.answer(&reply, Stage::Packet, 25, 1),
        Answer::Unrelated
    );
    // A wrong sum, no `@@`, a line too short to hold a sum: unreadable.
    let mut bad = server_answer(1, 1);
    let at = bad.len() - 3;
    bad[at] = if bad[at] == b'0' { b'1' } else { b'0' };
    assert!(DEVICE.next_reply(&mut bad, Stage::Packet).is_err());
    for junk in [&b"$$A10,1,CCC,1*00\r\n"[..], b"@@\r\n"] {
        let mut buf = BytesMut::from(junk);
        assert!(
            DEVICE.next_reply(&mut buf, Stage::Packet).is_err(),
            "{junk:?}"
        );
    }
    // Half an answer waits for the rest.
    let mut half = server_answer(2, 1);
    let rest = half.split_off(10);
    assert_eq!(DEVICE.next_reply(&mut half, Stage::Packet), Ok(None));
    half.extend_from_slice(&rest);
    assert!(DEVICE
        .next_reply(&mut half, Stage::Packet)
        .unwrap()
        .is_some());
}
