//! Property tests of the live call's parsers: the signalling frames (JSON
//! routing and event decoding, the answer fix-up). The H.264/RTP depacketizer
//! it uses is `media::h264`'s and fuzzed with it (`crate::fuzz`). Each must give a value or an error,
//! never panic.

use proptest::prelude::*;

use super::signalling::{Incoming, answered_audio_codec, fix_answer};
use crate::base::CameraId;
use crate::base::proptest_util::{config, edits, mutate};

const FRAME: &str = r#"{"method":"sdp","dialog_id":"d1","body":{"doorbot_id":42,"session_id":"s1","sdp":"v=0\r\n","mlineindex":1,"ice":"candidate:1 1 udp 1 1.2.3.4 5 typ host","is_ok":false,"text":"x","reason":{"code":6,"text":"Timeout"}}}"#;

const ANSWER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=sendrecv\r\na=rtpmap:0 PCMU/8000\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 99\r\na=sendrecv\r\na=extmap:1/sendrecv urn:x\r\na=rtpmap:99 H264/90000\r\n";

proptest! {
    #![proptest_config(config())]

    #[test]
    fn signalling_frames_never_panic(e in edits()) {
        let text = mutate(FRAME, &e);
        if let Ok(m) = serde_json::from_str::<Incoming>(&text) {
            let _ = m.is_for(CameraId::new(42), Some("s1"));
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
