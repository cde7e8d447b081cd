//! The signalling wire format of ring-api.md §6: the socket URL, the
//! `{method, dialog_id, body}` frames, and the fix-ups Ring's SDP answer needs.
//!
//! Pure functions and data only; the socket itself is driven by `call.rs`.

use serde_json::{Value, json};
use url::Url;

use super::error::CloseReason;

use crate::base::CameraId;

/// Builds the websocket URL: `base?api_version=4.0&auth_type=ring_solutions&
/// client_id=ring_site-<uuid>&token=<ticket>` (the ticket is URL-escaped).
pub(crate) fn socket_url(base: &Url, ticket: &str) -> Url {
    let mut u = base.clone();
    u.query_pairs_mut()
        .append_pair("api_version", "4.0")
        .append_pair("auth_type", "ring_solutions")
        .append_pair("client_id", &format!("ring_site-{}", uuid::Uuid::new_v4()))
        .append_pair("token", ticket);
    u
}

/// An outgoing frame. `doorbot_id` and (once known) `session_id` are added to
/// every body.
pub(crate) fn frame(
    method: &str,
    dialog_id: &str,
    doorbot_id: CameraId,
    session_id: Option<&str>,
    mut body: Value,
) -> String {
    if !body.is_object() {
        body = json!({});
    }
    if let Some(o) = body.as_object_mut() {
        o.insert("doorbot_id".into(), json!(doorbot_id));
        if let Some(s) = session_id {
            o.insert("session_id".into(), json!(s));
        }
    }
    json!({"method": method, "dialog_id": dialog_id, "body": body}).to_string()
}

/// An incoming frame, parsed just enough to route it.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct Incoming {
    pub method: String,
    #[serde(default)]
    pub body: Value,
}

/// What an incoming frame means to the call.
#[derive(Debug, PartialEq)]
pub(crate) enum Event {
    /// `session_created` / `session_started`.
    Session(String),
    /// `sdp` answer.
    Answer(String),
    /// Trickled remote candidate (empty ones are already skipped).
    Ice { candidate: String, mline_index: u16 },
    /// `notification {is_ok, text}`.
    Notification { is_ok: bool, text: String },
    /// `close {reason}`.
    Close(CloseReason),
    /// `pong`, `camera_started`, `stream_info`, … : logged only.
    Other(String),
}

impl Incoming {
    /// Whether the frame belongs to our call: a `doorbot_id` or `session_id` that
    /// is present and differs from ours means "not for us" (ring-api.md §6.3).
    pub fn is_for(&self, doorbot_id: CameraId, session_id: Option<&str>) -> bool {
        let door_ok = match self.body.get("doorbot_id") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_u64() == Some(doorbot_id.get()),
            Some(Value::String(s)) => s.parse::<u64>().ok() == Some(doorbot_id.get()),
            Some(_) => false,
        };
        let session_ok = match (
            self.body.get("session_id").and_then(Value::as_str),
            session_id,
        ) {
            (Some(theirs), Some(ours)) => theirs == ours,
            _ => true,
        };
        door_ok && session_ok
    }

    /// Interprets the frame. `Err` names what is missing.
    pub fn event(self) -> Result<Event, String> {
        let b = &self.body;
        let s = |k: &str| b.get(k).and_then(Value::as_str).map(str::to_owned);
        Ok(match self.method.as_str() {
            "session_created" | "session_started" => {
                Event::Session(s("session_id").ok_or("no session_id")?)
            }
            "sdp" => Event::Answer(s("sdp").ok_or("no sdp")?),
            "ice" => Event::Ice {
                candidate: s("ice").unwrap_or_default(),
                mline_index: b
                    .get("mlineindex")
                    .and_then(Value::as_u64)
                    .and_then(|i| u16::try_from(i).ok())
                    .unwrap_or(0),
            },
            "notification" => Event::Notification {
                is_ok: b.get("is_ok").and_then(Value::as_bool).unwrap_or(true),
                text: s("text").unwrap_or_default(),
            },
            "close" => Event::Close(
                b.get("reason")
                    .and_then(|r| serde_json::from_value(r.clone()).ok())
                    .unwrap_or(CloseReason {
                        code: 0,
                        text: String::new(),
                    }),
            ),
            _ => Event::Other(self.method),
        })
    }
}

/// Makes Ring's answer acceptable to a strict RFC 3264 stack, like
/// python-ring-doorbell does: for every m-section we offered `recvonly`, an
/// answered `a=sendrecv` becomes `a=sendonly`; directions on `a=extmap` lines
/// are dropped.
pub(crate) fn fix_answer(offer: &str, answer: &str) -> String {
    let offered: Vec<Option<&str>> = sections(offer).map(|s| direction(&s)).collect();
    let eol = if answer.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    let mut out = String::with_capacity(answer.len());
    for (i, section) in sections(answer).enumerate() {
        let recvonly_offered = i > 0 && offered.get(i).copied().flatten() == Some("recvonly");
        for line in section {
            if recvonly_offered && line == "a=sendrecv" {
                out.push_str("a=sendonly");
            } else if let Some(rest) = line.strip_prefix("a=extmap:") {
                let mut parts: Vec<&str> = rest.split(' ').collect();
                if parts.len() > 2
                    && matches!(parts[2], "sendonly" | "recvonly" | "sendrecv" | "inactive")
                {
                    parts.remove(2);
                }
                out.push_str("a=extmap:");
                out.push_str(&parts.join(" "));
            } else {
                out.push_str(line);
            }
            out.push_str(eol);
        }
    }
    out
}

/// Splits SDP into the session part (index 0) and one group of lines per m-section.
fn sections(sdp: &str) -> impl Iterator<Item = Vec<&str>> {
    let mut groups: Vec<Vec<&str>> = vec![Vec::new()];
    for line in sdp.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
        if line.starts_with("m=") {
            groups.push(Vec::new());
        }
        if let Some(g) = groups.last_mut() {
            g.push(line);
        }
    }
    groups.into_iter()
}

fn direction<'a>(section: &[&'a str]) -> Option<&'a str> {
    section.iter().find_map(|l| match *l {
        "a=sendrecv" | "a=sendonly" | "a=recvonly" | "a=inactive" => Some(&l[2..]),
        _ => None,
    })
}

/// The codec name (`rtpmap` encoding name, lowercase) of the first payload type on
/// the first m-line of `kind` (`audio`, `video`): the one the answer picked.
fn answered_codec(answer: &str, kind: &str) -> Option<String> {
    let m = format!("m={kind}");
    let section = sections(answer)
        .skip(1)
        .find(|s| s.first().is_some_and(|l| l.starts_with(m.as_str())))?;
    let pt = section.first()?.split(' ').nth(3)?;
    let rtpmap = format!("a=rtpmap:{pt} ");
    let name = section
        .iter()
        .find_map(|l| l.strip_prefix(rtpmap.as_str()))?;
    Some(name.to_ascii_lowercase())
}

/// The audio codec the answer picked: the first payload type on the audio m-line.
pub(crate) fn answered_audio_codec(answer: &str) -> Option<super::AudioCodec> {
    let name = answered_codec(answer, "audio")?;
    if name.starts_with("opus/") {
        Some(super::AudioCodec::Opus)
    } else if name.starts_with("pcmu/") {
        Some(super::AudioCodec::Pcmu)
    } else {
        None
    }
}

/// The video codec the answer picked (H.265 when Ring answered `H265`/`HEVC`,
/// otherwise H.264, the only other codec we offer).
pub(crate) fn answered_video_codec(answer: &str) -> crate::media::VideoCodec {
    match answered_codec(answer, "video") {
        Some(n) if n.starts_with("h265/") || n.starts_with("hevc/") => {
            crate::media::VideoCodec::H265
        }
        _ => crate::media::VideoCodec::H264,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\na=mid:0\r\na=sendrecv\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 102\r\na=mid:1\r\na=recvonly\r\n";
    const ANSWER: &str = "v=0\r\no=- 2 2 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\n\
        a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=sendrecv\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 102\r\na=mid:1\r\n\
        a=extmap:3/sendrecv http://example/ext sendrecv\r\na=sendrecv\r\n";

    #[test]
    fn answer_fixup_only_touches_recvonly_sections() {
        let fixed = fix_answer(OFFER, ANSWER);
        let secs: Vec<Vec<&str>> = sections(&fixed).collect();
        assert_eq!(direction(&secs[1]), Some("sendrecv"));
        assert_eq!(direction(&secs[2]), Some("sendonly"));
        assert!(fixed.contains("a=extmap:3/sendrecv http://example/ext\r\n"));
        assert!(fixed.contains("a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"));
        assert_eq!(
            answered_audio_codec(&fixed),
            Some(crate::ring::live::AudioCodec::Opus)
        );
    }

    #[test]
    fn url_escapes_ticket() {
        let base = Url::parse("wss://example.com:443/ws").unwrap();
        let u = socket_url(&base, "a+b/c=");
        let q: std::collections::HashMap<_, _> = u.query_pairs().into_owned().collect();
        assert_eq!(q["api_version"], "4.0");
        assert_eq!(q["auth_type"], "ring_solutions");
        assert!(q["client_id"].starts_with("ring_site-"));
        assert_eq!(q["token"], "a+b/c=");
        assert!(u.as_str().contains("token=a%2Bb%2Fc%3D"));
    }

    #[test]
    fn frames_and_filtering() {
        let f: Value = serde_json::from_str(&frame(
            "ping",
            "d1",
            CameraId::new(42),
            Some("s1"),
            Value::Null,
        ))
        .unwrap();
        assert_eq!(
            f,
            json!({"method":"ping","dialog_id":"d1","body":{"doorbot_id":42,"session_id":"s1"}})
        );
        let m: Incoming =
            serde_json::from_str(r#"{"method":"close","body":{"doorbot_id":42,"session_id":"s2","reason":{"code":6,"text":"Timeout waiting for ping"}}}"#)
                .unwrap();
        assert!(!m.is_for(CameraId::new(42), Some("s1")));
        assert!(m.is_for(CameraId::new(42), None));
        assert!(!m.is_for(CameraId::new(43), None));
        assert_eq!(
            m.event(),
            Ok(Event::Close(CloseReason {
                code: 6,
                text: "Timeout waiting for ping".into()
            }))
        );
        let m: Incoming = serde_json::from_str(r#"{"method":"ice","body":{"ice":"candidate:1 1 udp 1 1.2.3.4 5 typ host","mlineindex":1}}"#).unwrap();
        assert_eq!(
            m.event(),
            Ok(Event::Ice {
                candidate: "candidate:1 1 udp 1 1.2.3.4 5 typ host".into(),
                mline_index: 1
            })
        );
    }
}
