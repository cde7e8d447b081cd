//! [`CameraId`]: Ring's numeric doorbot id, one type from the Ring JSON to the hub key,
//! the REST path and the MQTT topic.
//!
//! The id is parsed once where it enters as text (an HTTP path, an MQTT topic, a config
//! value) and travels typed from there; nothing formats it to a string to parse it back.
//! Serde sees the bare number (`#[serde(transparent)]`), so every JSON document that
//! carried a `u64` before (REST answers, MQTT payloads, state files, Ring's own JSON)
//! is byte-identical. The few documents that always carried the id as a decimal string
//! (the hub key in an announcement or a WHEP session listing) use [`as_string`].
//! This module depends on nothing of ours.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Ring's numeric camera id (`doorbot_id`, `device.id`; the `{id}` of
/// `clients_api/doorbots/{id}/…`). Also the media hub's camera key.
///
/// `Display` and [`FromStr`] use plain decimal (`10001`); serde uses the bare
/// number. Cheap to copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CameraId(u64);

impl CameraId {
    /// The id Ring calls `id` (a camera's `doorbot_id`).
    pub const fn new(id: u64) -> Self {
        CameraId(id)
    }

    /// The number, for the places that speak Ring's wire format by hand.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for CameraId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Text that is not a camera id: anything but the canonical decimal form of a `u64`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a camera id (a decimal number): {text:?}")]
pub struct ParseCameraIdError {
    /// The rejected text, cut to 40 characters.
    text: String,
}

impl FromStr for CameraId {
    type Err = ParseCameraIdError;

    /// Accepts only the canonical decimal form (ASCII digits, no sign, no blanks, no
    /// leading zero), the form of every id Ring hands out and of every path or topic
    /// segment this daemon builds. So `s.parse::<CameraId>()` succeeds exactly when
    /// some id's `to_string()` equals `s`, and comparing parsed ids matches comparing
    /// their text.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseCameraIdError {
            text: s.chars().take(40).collect(),
        };
        let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits || (s.len() > 1 && s.starts_with('0')) {
            return Err(bad());
        }
        s.parse::<u64>().map(CameraId).map_err(|_| bad())
    }
}

/// `#[serde(serialize_with = "as_string")]`: writes the id as its decimal string
/// (`"10001"`), for the JSON fields that have always carried the hub key as text.
pub fn as_string<S: serde::Serializer>(id: &CameraId, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        for n in [0, 1, 10001, 987_654_321, u64::MAX] {
            let id = CameraId::new(n);
            assert_eq!(id.get(), n);
            assert_eq!(id.to_string(), n.to_string());
            assert_eq!(id.to_string().parse::<CameraId>(), Ok(id));
        }
    }

    #[test]
    fn serde_is_the_bare_number() {
        let id = CameraId::new(10001);
        assert_eq!(serde_json::to_string(&id).unwrap(), "10001");
        assert_eq!(serde_json::from_str::<CameraId>("10001").unwrap(), id);
        assert_eq!(
            serde_json::to_string(&serde_json::json!({ "camera_id": id })).unwrap(),
            r#"{"camera_id":10001}"#
        );
        assert!(serde_json::from_str::<CameraId>(r#""10001""#).is_err());
        assert!(serde_json::from_str::<CameraId>("-1").is_err());
    }

    #[test]
    fn as_string_writes_the_decimal_text() {
        #[derive(Serialize)]
        struct Doc {
            #[serde(serialize_with = "as_string")]
            camera: CameraId,
        }
        let doc = Doc {
            camera: CameraId::new(10001),
        };
        assert_eq!(
            serde_json::to_string(&doc).unwrap(),
            r#"{"camera":"10001"}"#
        );
    }

    #[test]
    fn bad_text_is_a_typed_error() {
        for bad in [
            "",
            "abc",
            "-1",
            "+1",
            " 1",
            "1 ",
            "1.0",
            "0x10",
            "007",
            "00",
            "front-door",
            "18446744073709551616",
        ] {
            let err = bad.parse::<CameraId>().unwrap_err();
            assert!(
                err.to_string().starts_with("not a camera id"),
                "{bad}: {err}"
            );
        }
        let long = "x".repeat(100);
        let err = long.parse::<CameraId>().unwrap_err();
        assert_eq!(
            err.to_string().len(),
            "not a camera id (a decimal number): \"\"".len() + 40
        );
    }

    #[test]
    fn orders_and_hashes_by_number() {
        let mut ids = vec![CameraId::new(10), CameraId::new(9), CameraId::new(100)];
        ids.sort();
        assert_eq!(
            ids,
            vec![CameraId::new(9), CameraId::new(10), CameraId::new(100)]
        );
        let set: std::collections::HashSet<_> = [CameraId::new(1), CameraId::new(1)].into();
        assert_eq!(set.len(), 1);
    }
}
