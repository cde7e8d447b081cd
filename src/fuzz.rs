//! Property tests of the parsers that take outside input and live in public
//! modules: the Ring push payload (v1 and v2 shapes), the config loader (TOML
//! file and environment), the H.264 parameter-set parser of the media hub and
//! its RFC 6184 depacketizer fed random and reordered packets. The viewer SDP,
//! the live call's signalling, and MQTT intake
//! have theirs next to them (`webrtc::fuzz`, `ring::live::fuzz`, `mqtt::fuzz`).
//!
//! Each input gives a value or an error, never a panic. `PROPTEST_CASES`
//! scales the run; see `docs/RELIABILITY.md`.

use std::collections::HashMap;

use bytes::Bytes;
use proptest::prelude::*;

use crate::base::proptest_util::{config, edits, mutate};
use crate::events::push::payload;
use crate::events::push::transport::RawPush;

const PUSHES: &[&str] = &[
    include_str!("events/push/testdata/doorbell_ding_v2.json"),
    include_str!("events/push/testdata/doorbell_ding_v1_gcmdata.json"),
    include_str!("events/push/testdata/floodlight_motion_human_v2.json"),
    include_str!("events/push/testdata/camera_motion_sparse_v2.json"),
    include_str!("events/push/testdata/intercom_ding_v2.json"),
    include_str!("events/push/testdata/alarm_mode_v1_gcmdata.json"),
];

/// One RTP packet: sequence delta, timestamp delta, marker, payload.
fn packet() -> impl Strategy<Value = (u16, u32, bool, Vec<u8>)> {
    let payload = prop_oneof![
        // Single NAL units, STAP-A (24), FU-A (28) with any header bits.
        proptest::collection::vec(any::<u8>(), 0..64),
        (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(h, mut v)| {
            v.insert(0, (h & 0xe0) | 24);
            v
        }),
        (
            any::<u8>(),
            any::<u8>(),
            proptest::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(h, fu, mut v)| {
                v.insert(0, fu);
                v.insert(0, (h & 0xe0) | 28);
                v
            }),
    ];
    (
        prop_oneof![Just(1u16), any::<u16>()],
        prop_oneof![Just(0u32), Just(3000u32), any::<u32>()],
        any::<bool>(),
        payload,
    )
}

const CONFIG: &str = include_str!("../config/ring-bridge.example.toml");

/// A real SPS (x264, High, 1920x1080) with its NAL header.
const SPS: &[u8] = crate::media::testutil::FAKE_SPS;

proptest! {
    #![proptest_config(config())]

    #[test]
    fn push_payloads_never_panic(which in 0..PUSHES.len(), e in edits(), key in 0usize..8) {
        let body: serde_json::Value = serde_json::from_str(PUSHES[which]).expect("sample is JSON");
        let mut raw = RawPush::from_fcm_body(&body).expect("sample has data");
        // Mutate one data value (they carry JSON text), keep the rest valid.
        let n = raw.data.len().max(1);
        if let Some(v) = raw.data.values_mut().nth(key % n) {
            *v = mutate(v, &e);
        }
        let _ = payload::parse(&raw);
    }

    #[test]
    fn push_bodies_never_panic(which in 0..PUSHES.len(), e in edits()) {
        if let Ok(body) = serde_json::from_str::<serde_json::Value>(&mutate(PUSHES[which], &e))
            && let Some(raw) = RawPush::from_fcm_body(&body)
        {
            let _ = payload::parse(&raw);
        }
    }

    #[test]
    fn config_files_never_panic(e in edits()) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("ring-bridge.toml");
        std::fs::write(&path, mutate(CONFIG, &e)).expect("write config");
        let _ = crate::config::load_with_env(Some(&path), &HashMap::new());
    }

    #[test]
    fn config_env_never_panics(
        vars in proptest::collection::hash_map(
            prop_oneof![
                Just("HTTP_PORT".to_owned()), Just("LISTEN_IP".to_owned()),
                Just("RTC_MIN_PORT".to_owned()), Just("RING_TALK_PT".to_owned()),
                Just("MQTT_URL".to_owned()), Just("HTTP_ALLOWED_HOSTS".to_owned()),
                Just("RING_SIMULATOR_URL".to_owned()), Just("ALLOW_UNAUTHENTICATED".to_owned()),
            ],
            "\\PC{0,30}",
            0..6,
        )
    ) {
        let _ = crate::config::load_with_env(None, &vars);
    }

    #[test]
    fn depacketizer_never_panics(packets in proptest::collection::vec(packet(), 0..200)) {
        let mut d = crate::media::h264::rtp::Depacketizer::default();
        let (mut seq, mut ts) = (0u16, 0u32);
        for (dseq, dts, marker, payload) in packets {
            seq = seq.wrapping_add(dseq);
            ts = ts.wrapping_add(dts);
            d.push(seq, ts, marker, &Bytes::from(payload));
            while let Some(au) = d.pull() {
                for nal in crate::media::h264::nal_slices(&au.data) {
                    let _ = crate::media::h264::parse_sps(nal);
                }
            }
            let _ = d.take_pli_request();
        }
    }

    #[test]
    fn sps_parser_never_panics(nal in proptest::collection::vec(any::<u8>(), 0..128)) {
        let _ = crate::media::h264::parse_sps(&nal);
    }

    #[test]
    fn sps_never_panics(e in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
                        cut in any::<usize>()) {
        let mut sps = SPS.to_vec();
        for (i, b) in e {
            let n = sps.len();
            sps[i % n] = b;
        }
        sps.truncate(1 + cut % SPS.len());
        let _ = crate::media::h264::parse_sps(&sps);
        let au = Bytes::from([&[0u8, 0, 0, 1][..], &sps].concat());
        let _ = crate::media::h264::find_parameter_sets(&au);
        for nal in crate::media::h264::nal_units(&au) {
            let _ = crate::media::h264::nal_type(&nal);
        }
    }
}

#[test]
fn samples_parse() {
    let sps = crate::media::h264::parse_sps(SPS).expect("the sample SPS parses");
    assert_eq!((sps.width, sps.height), (1920, 1080));
    assert!(crate::config::load_with_env(None, &HashMap::new()).is_ok());
}
