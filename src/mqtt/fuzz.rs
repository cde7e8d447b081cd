//! Property tests of MQTT intake: any topic and payload goes through the
//! command-topic parser, the size/retain filter and the switch payload parser
//! without panicking, and only well-formed commands are recognised.

use proptest::prelude::*;

use super::MqttOptions;
use super::commands::switch_payload;
use super::intake::Intake;
use super::topics::Topics;
use crate::base::Secret;
use crate::base::proptest_util::{config, edits, mutate};

fn topics() -> Topics {
    Topics::new(&MqttOptions::new(Secret::new("mqtt://127.0.0.1".into())))
}

const COMMAND: &str = "ring/5d1a2f3e-0001/camera/a4c1380f0003/light/command";

proptest! {
    #![proptest_config(config())]

    #[test]
    fn topics_and_payloads_never_panic(
        e in edits(),
        payload in proptest::collection::vec(any::<u8>(), 0..256),
        retain in any::<bool>(),
    ) {
        let t = topics();
        let intake = Intake::new(128);
        let topic = mutate(COMMAND, &e);
        let cmd = t.parse_command(&topic);
        if let Some(c) = &cmd {
            prop_assert!(topic.ends_with("/command"));
            prop_assert!(!c.device_id.is_empty() && !c.device_id.contains('/'));
        }
        if intake.admit(&topic, payload.len(), retain, cmd.is_some()) {
            prop_assert!(payload.len() <= 128);
            prop_assert!(!(retain && cmd.is_some()));
            let text = String::from_utf8_lossy(&payload);
            if let Some(on) = switch_payload(&text) {
                prop_assert_eq!(text.trim().to_ascii_uppercase(), if on { "ON" } else { "OFF" });
            }
        }
    }
}

#[test]
fn switch_payloads() {
    assert_eq!(switch_payload(" on\n"), Some(true));
    assert_eq!(switch_payload("OFF"), Some(false));
    assert_eq!(switch_payload("ONN"), None);
    assert_eq!(switch_payload("\u{130}N"), None, "no Unicode case folding");
}
