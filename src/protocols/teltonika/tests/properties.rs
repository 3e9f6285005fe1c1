//! Property tests: random valid codec 8 / 8E / 16 packets decode to exactly the
//! values encoded, over TCP and UDP, with the exact reply; our test encoder
//! agrees byte for byte with nom-teltonika's; arbitrary bytes never panic.

use proptest::prelude::*;

use super::*;
use crate::model::{AttrKey, AttrValue};
use crate::protocol::{MessageKind, Reply};
use chrono::DateTime;
use encode::{Record, C16, C8, C8E};

fn ids(codec: u8) -> BoxedStrategy<u16> {
    if codec == C8 {
        any::<u8>().prop_map(u16::from).boxed()
    } else {
        any::<u16>().boxed()
    }
}

fn record(codec: u8) -> impl Strategy<Value = Record> {
    let head = (
        946_684_800_000u64..4_102_444_800_000, // 2000..2100
        any::<u8>(),
        -1_800_000_000i32..=1_800_000_000,
        -900_000_000i32..=900_000_000,
        any::<i16>(),
        0u16..=360,
        any::<u8>(),
        any::<u16>(),
        ids(codec),
        any::<u8>(),
    );
    let nx = if codec == C8E {
        prop::collection::vec(
            (any::<u16>(), prop::collection::vec(any::<u8>(), 0..40)),
            0..4,
        )
        .boxed()
    } else {
        Just(Vec::new()).boxed()
    };
    let io = (
        prop::collection::vec((ids(codec), any::<u8>()), 0..6),
        prop::collection::vec((ids(codec), any::<u16>()), 0..6),
        prop::collection::vec((ids(codec), any::<u32>()), 0..6),
        prop::collection::vec((ids(codec), any::<u64>()), 0..6),
        nx,
    );
    (head, io).prop_map(
        |(
            (millis, priority, lon, lat, altitude, course, satellites, speed, event, generation),
            (io1, io2, io4, io8, nx),
        )| Record {
            millis,
            priority,
            lon,
            lat,
            altitude,
            course,
            satellites,
            speed,
            event,
            generation,
            io1,
            io2,
            io4,
            io8,
            nx,
        },
    )
}

fn packet() -> impl Strategy<Value = (u8, Vec<Record>)> {
    prop_oneof![Just(C8), Just(C8E), Just(C16)]
        .prop_flat_map(|codec| (Just(codec), prop::collection::vec(record(codec), 0..6)))
}

/// The raw IO attributes a record must decode to, in wire order.
fn expected_io(r: &Record) -> Vec<(AttrKey, AttrValue)> {
    // The raw unsigned value: `Int` while it fits an i64, else `UInt`.
    let int = |id: u16, v: u64| {
        let value = i64::try_from(v).map_or(AttrValue::UInt(v), AttrValue::Int);
        (AttrKey::Io(u32::from(id)), value)
    };
    let mut out = Vec::new();
    out.extend(r.io1.iter().map(|(id, v)| int(*id, u64::from(*v))));
    out.extend(r.io2.iter().map(|(id, v)| int(*id, u64::from(*v))));
    out.extend(r.io4.iter().map(|(id, v)| int(*id, u64::from(*v))));
    out.extend(r.io8.iter().map(|(id, v)| int(*id, *v)));
    out.extend(
        r.nx.iter()
            .map(|(id, b)| (AttrKey::Io(u32::from(*id)), AttrValue::Text(hex::encode(b)))),
    );
    out
}

fn check_records(
    d: &Decoded,
    codec: u8,
    records: &[Record],
    device: &DeviceId,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(d.kind, MessageKind::Data);
    prop_assert_eq!(d.positions.len(), records.len());
    prop_assert!(d.reports.is_empty());
    for (p, r) in d.positions.iter().zip(records) {
        prop_assert_eq!(&p.device_id, device);
        prop_assert_eq!(p.fix_time.timestamp_millis(), r.millis as i64);
        prop_assert_eq!(p.received_time, ctx().received);
        prop_assert_eq!(p.lat, f64::from(r.lat) / 1e7);
        prop_assert_eq!(p.lon, f64::from(r.lon) / 1e7);
        prop_assert_eq!(p.altitude_m, f64::from(r.altitude));
        prop_assert_eq!(p.course_deg, f64::from(r.course));
        prop_assert_eq!(p.speed_kmh, f64::from(r.speed));
        prop_assert_eq!(p.satellites, Some(r.satellites));
        prop_assert_eq!(p.valid, r.satellites != 0);
        prop_assert_eq!(p.protocol, "teltonika");
        prop_assert_eq!(
            p.attributes.get("priority"),
            Some(&AttrValue::Int(i64::from(r.priority)))
        );
        prop_assert_eq!(
            p.attributes.get("event_io"),
            Some(&AttrValue::Int(i64::from(r.event)))
        );
        let generation = AttrValue::Int(i64::from(r.generation));
        prop_assert_eq!(
            p.attributes.get("generation_type"),
            (codec == C16).then_some(&generation)
        );
        let io: Vec<_> = p
            .attributes
            .iter()
            .filter(|(k, _)| matches!(k, AttrKey::Io(_)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        prop_assert_eq!(io, expected_io(r));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn generated_tcp_packets_decode_to_every_value(packet in packet()) {
        let (codec, records) = packet;
        let frame = encode::tcp_packet(&encode::data(codec, &records));
        let mut s = logged_in();
        // Through the framer, as the server reads it.
        let mut buf = BytesMut::from(frame.as_slice());
        let cut = s.frame(&mut buf).unwrap().unwrap();
        prop_assert_eq!(cut.as_ref(), frame.as_slice());
        let d = s.decode(&cut, &ctx()).unwrap();
        check_records(&d, codec, &records, &imei())?;
        let count = records.len() as u32;
        prop_assert_eq!(d.reply.accept.as_deref(), Some(&count.to_be_bytes()[..]));
        prop_assert_eq!(d.reply.refuse.as_deref(), None);
    }

    #[test]
    fn generated_command_responses_are_reports_and_never_acked(
        payload in prop_oneof![
            "[ -~]{0,80}".prop_map(String::into_bytes),
            prop::collection::vec(any::<u8>(), 0..80),
        ],
        seconds in prop::option::of(0u32..=u32::MAX),
    ) {
        prop_assume!(!payload.starts_with(b"GTSL"), "a driver id is its own test");
        let frame = encode::tcp_packet(&encode::response(0x06, &payload, seconds));
        let d = logged_in().decode(&frame, &ctx()).unwrap();
        prop_assert_eq!(d.kind, MessageKind::CommandResponse);
        prop_assert_eq!(&d.reply, &Reply::NONE);
        prop_assert!(d.positions.is_empty());
        prop_assert_eq!(d.reports.len(), 1);
        let r = &d.reports[0];
        prop_assert_eq!(&r.device_id, &imei());
        let time = seconds.map_or(ctx().received, |t| {
            DateTime::from_timestamp(i64::from(t), 0).unwrap()
        });
        prop_assert_eq!(r.time, time);
        prop_assert_eq!(r.attributes.get("response_type"), Some(&AttrValue::Int(6)));
        let text = match std::str::from_utf8(&payload) {
            Ok(t) if t.bytes().all(|b| matches!(b, b' '..=b'~' | b'\r' | b'\n')) => t.trim().to_string(),
            _ => hex::encode(&payload),
        };
        prop_assert_eq!(r.attributes.get("result"), Some(&AttrValue::Text(text)));
    }

    #[test]
    fn generated_udp_datagrams_decode_to_every_value(
        packet in packet(),
        packet_id in any::<u16>(),
        avl_packet_id in any::<u8>(),
        device in "[0-9]{15}",
    ) {
        let (codec, records) = packet;
        let datagram = encode::udp_datagram(packet_id, avl_packet_id, &device, &encode::data(codec, &records));
        let d = session(Transport::Udp).decode(&datagram, &ctx()).unwrap();
        let id = DeviceId::new(&device).unwrap();
        prop_assert_eq!(d.device.as_ref(), Some(&id));
        check_records(&d, codec, &records, &id)?;
        let [hi, lo] = packet_id.to_be_bytes();
        let expected = [0x00, 0x05, hi, lo, 0x01, avl_packet_id, records.len() as u8];
        prop_assert_eq!(d.reply.accept.as_deref(), Some(&expected[..]));
    }

    #[test]
    fn test_encoder_matches_nom_teltonika(packet in packet()) {
        use nom_teltonika::encoder::{encode_avl_frame, AvlRecordFields, EncodeAvlError};
        use nom_teltonika::protocol::{AvlCodec, AvlTimestamp, GpsElement, IoId, Priority};
        let (codec, mut records) = packet;
        prop_assume!(!records.is_empty(), "nom-teltonika encodes no empty packet");
        prop_assume!(codec != C16, "nom-teltonika encodes codecs 8 and 8E only");
        for r in &mut records {
            r.priority %= 3;
        }
        let ios: Vec<_> = records
            .iter()
            .map(|r| {
                let id = |v: &u16| IoId::from(*v);
                (
                    r.io1.iter().map(|(i, v)| (id(i), *v)).collect::<Vec<_>>(),
                    r.io2.iter().map(|(i, v)| (id(i), *v)).collect::<Vec<_>>(),
                    r.io4.iter().map(|(i, v)| (id(i), *v)).collect::<Vec<_>>(),
                    r.io8.iter().map(|(i, v)| (id(i), *v)).collect::<Vec<_>>(),
                    r.nx.iter().map(|(i, v)| (id(i), v.as_slice())).collect::<Vec<_>>(),
                )
            })
            .collect();
        let fields: Vec<_> = records
            .iter()
            .zip(&ios)
            .map(|(r, io)| {
                let gps = GpsElement {
                    longitude_raw: r.lon,
                    latitude_raw: r.lat,
                    altitude_meters: r.altitude as u16,
                    angle_degrees: r.course,
                    satellites: r.satellites,
                    speed_kph: r.speed,
                };
                let priority = Priority::try_from(r.priority).unwrap();
                let mut f = AvlRecordFields::new(AvlTimestamp::from(r.millis), priority, gps)
                    .with_io_u8(&io.0)
                    .with_io_u16(&io.1)
                    .with_io_u32(&io.2)
                    .with_io_u64(&io.3)
                    .with_io_bytes(&io.4);
                if r.event != 0 {
                    f = f.with_event_io_id(IoId::from(r.event));
                }
                f
            })
            .collect();
        let nom_codec = if codec == C8 { AvlCodec::Codec8 } else { AvlCodec::Codec8Extended };
        match encode_avl_frame(nom_codec, &fields) {
            Ok(theirs) => prop_assert_eq!(hex::encode(encode::tcp_packet(&encode::data(codec, &records))), hex::encode(theirs)),
            Err(EncodeAvlError::TooLong { .. }) => {}
            Err(e) => prop_assert!(false, "nom-teltonika refused the record: {e}"),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        // Framer, then whatever comes out, on a logged-in session.
        let mut s = logged_in();
        let mut buf = BytesMut::from(bytes.as_slice());
        while let Ok(Some(frame)) = s.frame(&mut buf) {
            let _ = s.decode(&frame, &ctx());
        }
        let _ = logged_in().decode(&bytes, &ctx());
        let _ = session(Transport::Udp).decode(&bytes, &ctx());
    }

    #[test]
    fn corrupted_packets_are_never_acknowledged_as_good(
        packet in packet(),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let (codec, records) = packet;
        let mut frame = encode::tcp_packet(&encode::data(codec, &records));
        // Flip bits anywhere after the preamble and length.
        let i = 8 + at.index(frame.len() - 8);
        frame[i] ^= flip;
        match logged_in().decode(&frame, &ctx()) {
            Err(r) => {
                prop_assert_eq!(r.reply.as_deref(), Some(&[0u8, 0, 0, 0][..]));
                prop_assert!(!r.close);
            }
            Ok(d) => prop_assert!(false, "corrupted packet accepted: {d:?}"),
        }
    }

    #[test]
    fn garbage_inside_valid_looking_data_never_panics(
        codec in prop_oneof![Just(0x07u8), Just(0x08), Just(0x8E), Just(0x0C), Just(0x0D), Just(0x10)],
        count in any::<u8>(),
        body in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        // A correct CRC and equal counts around random records: the record
        // parsers themselves see hostile input.
        let mut data = vec![codec, count];
        data.extend_from_slice(&body);
        data.push(count);
        let _ = logged_in().decode(&encode::tcp_packet(&data), &ctx());
    }
}
