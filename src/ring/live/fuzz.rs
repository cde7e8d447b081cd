//! Property tests of the live call's parsers: the H.264/RTP depacketizer fed
//! random and reordered packets, and the signalling frames (JSON routing and
//! event decoding, the answer fix-up). Each must give a value or an error,
//! never panic.

use bytes::Bytes;
use proptest::prelude::*;

use super::h264::{Depacketizer, annex_b_nals, sps_resolution};
use super::signalling::{Incoming, answered_audio_codec, fix_answer};
use crate::base::proptest_util::{config, edits, mutate};

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

const FRAME: &str = r#"{"method":"sdp","dialog_id":"d1","body":{"doorbot_id":42,"session_id":"s1","sdp":"v=0\r\n","mlineindex":1,"ice":"candidate:1 1 udp 1 1.2.3.4 5 typ host","is_ok":false,"text":"x","reason":{"code":6,"text":"Timeout"}}}"#;

const ANSWER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=sendrecv\r\na=rtpmap:0 PCMU/8000\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 99\r\na=sendrecv\r\na=extmap:1/sendrecv urn:x\r\na=rtpmap:99 H264/90000\r\n";

proptest! {
    #![proptest_config(config())]

    #[test]
    fn depacketizer_never_panics(packets in proptest::collection::vec(packet(), 0..200)) {
        let mut d = Depacketizer::default();
        let (mut seq, mut ts) = (0u16, 0u32);
        for (dseq, dts, marker, payload) in packets {
            seq = seq.wrapping_add(dseq);
            ts = ts.wrapping_add(dts);
            d.push(seq, ts, marker, &Bytes::from(payload));
            while let Some(au) = d.pull() {
                for nal in annex_b_nals(&au.data) {
                    let _ = sps_resolution(nal);
                }
            }
            let _ = d.take_pli_request();
        }
    }

    #[test]
    fn sps_parser_never_panics(nal in proptest::collection::vec(any::<u8>(), 0..128)) {
        let _ = sps_resolution(&nal);
    }

    #[test]
    fn signalling_frames_never_panic(e in edits()) {
        let text = mutate(FRAME, &e);
        if let Ok(m) = serde_json::from_str::<Incoming>(&text) {
            let _ = m.is_for(42, Some("s1"));
            let _ = m.event();
        }
    }

    #[test]
    fn answer_fix_up_never_panics(e in edits(), f in edits()) {
        let offer = mutate(&ANSWER.replace("sendrecv", "recvonly"), &e);
        let answer = mutate(ANSWER, &f);
        let fixed = fix_answer(&offer, &answer);
        let _ = answered_audio_codec(&fixed);
    }
}
