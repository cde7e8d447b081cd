//! What an announcement plays ([`Clip`]: an audio file, a URL to fetch one
//! from, or text to speak) and the JSON request shape shared by REST and MQTT
//! ([`JsonRequest`]).

use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;

use super::AnnounceError;

/// The audio types an announcement takes (as `Content-Type` of an upload or of
/// a fetched URL). The decoder sniffs the actual format; the type only gates
/// what is accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioType {
    /// `audio/wav` (also `audio/x-wav`, `audio/wave`, `audio/vnd.wave`).
    Wav,
    /// `audio/mpeg` (also `audio/mp3`).
    Mpeg,
    /// `audio/ogg` (Vorbis or Opus in Ogg).
    Ogg,
    /// `audio/opus` (Opus in Ogg, RFC 7845).
    Opus,
}

impl AudioType {
    /// Parses a `Content-Type` value (parameters ignored).
    pub fn parse(content_type: &str) -> Result<AudioType, AnnounceError> {
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "audio/wav" | "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => Ok(AudioType::Wav),
            "audio/mpeg" | "audio/mp3" => Ok(AudioType::Mpeg),
            "audio/ogg" => Ok(AudioType::Ogg),
            "audio/opus" => Ok(AudioType::Opus),
            _ => Err(AnnounceError::UnsupportedType {
                mime: mime.chars().take(64).collect(),
            }),
        }
    }

    /// Whether a fetched URL's `Content-Type` says nothing useful
    /// (`application/octet-stream`, `binary/octet-stream`): the decoder decides.
    pub fn is_unknown_binary(content_type: &str) -> bool {
        let mime = content_type.split(';').next().unwrap_or("").trim();
        mime.eq_ignore_ascii_case("application/octet-stream")
            || mime.eq_ignore_ascii_case("binary/octet-stream")
    }
}

/// What to play.
#[derive(Clone, Debug)]
pub enum Clip {
    /// An audio file (uploaded).
    Audio {
        /// The file.
        data: Bytes,
        /// Its declared type.
        kind: AudioType,
    },
    /// An http(s) URL to fetch an audio file from.
    Url(String),
    /// Text to speak.
    Text {
        /// The text.
        text: String,
        /// The language (an eSpeak NG voice: `en`, `de`, `en-us`, ...).
        lang: String,
    },
}

impl Clip {
    /// `audio`, `url` or `text`, for logs and answers.
    pub fn source(&self) -> &'static str {
        match self {
            Clip::Audio { .. } => "audio",
            Clip::Url(_) => "url",
            Clip::Text { .. } => "text",
        }
    }
}

/// The default language of spoken text.
pub const DEFAULT_LANG: &str = "en";

/// An announcement request.
#[derive(Clone, Debug)]
pub struct AnnounceRequest {
    /// What to play.
    pub clip: Clip,
    /// Loudness in percent of the clip's own level, 1..=200. Default 100.
    pub volume: Option<u8>,
    /// How long to wait for the talk floor when someone else holds it; zero:
    /// fail at once (HTTP 409). Capped by the announcer's `max_floor_wait`.
    pub wait: Duration,
}

/// The JSON body of `POST …/announce` and of the MQTT `announce/command` topic:
/// exactly one of `url` and `text`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonRequest {
    /// An http(s) URL of an audio file.
    pub url: Option<String>,
    /// Text to speak.
    pub text: Option<String>,
    /// Language of `text`; default `en`.
    pub lang: Option<String>,
    /// Loudness in percent, 1..=200; default 100.
    pub volume: Option<u8>,
    /// Seconds to wait for the talk floor; default 0 (fail at once).
    pub wait_s: Option<u64>,
}

impl JsonRequest {
    /// Parses a JSON body.
    pub fn parse(body: &[u8]) -> Result<JsonRequest, AnnounceError> {
        serde_json::from_slice(body).map_err(|e| {
            AnnounceError::BadRequest(format!(
                "expected {{\"text\": \"...\", \"lang\": \"en\"}} or {{\"url\": \"http(s)://...\"}} \
                 with optional volume and wait_s: {e}"
            ))
        })
    }

    /// The request this body asks for.
    pub fn into_request(self) -> Result<AnnounceRequest, AnnounceError> {
        let clip = match (self.url, self.text) {
            (Some(url), None) => {
                if self.lang.is_some() {
                    return Err(AnnounceError::BadRequest(
                        "lang goes with text, not with url".into(),
                    ));
                }
                Clip::Url(url)
            }
            (None, Some(text)) => Clip::Text {
                text,
                lang: self.lang.unwrap_or_else(|| DEFAULT_LANG.into()),
            },
            _ => {
                return Err(AnnounceError::BadRequest(
                    "give exactly one of url and text".into(),
                ));
            }
        };
        Ok(AnnounceRequest {
            clip,
            volume: self.volume,
            wait: Duration::from_secs(self.wait_s.unwrap_or(0)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_types() {
        assert_eq!(AudioType::parse("audio/x-wav").unwrap(), AudioType::Wav);
        assert_eq!(
            AudioType::parse("Audio/MPEG; charset=x").unwrap(),
            AudioType::Mpeg
        );
        assert_eq!(AudioType::parse("audio/opus").unwrap(), AudioType::Opus);
        assert!(matches!(
            AudioType::parse("video/mp4"),
            Err(AnnounceError::UnsupportedType { .. })
        ));
        assert!(AudioType::is_unknown_binary("application/octet-stream"));
    }

    #[test]
    fn json_requests() {
        let r = JsonRequest::parse(br#"{"text":"Hi","volume":50,"wait_s":5}"#)
            .unwrap()
            .into_request()
            .unwrap();
        assert!(matches!(&r.clip, Clip::Text { lang, .. } if lang == "en"));
        assert_eq!((r.volume, r.wait), (Some(50), Duration::from_secs(5)));
        let r = JsonRequest::parse(br#"{"url":"http://x/a.mp3"}"#)
            .unwrap()
            .into_request()
            .unwrap();
        assert_eq!(r.clip.source(), "url");
        for bad in [
            &br#"{}"#[..],
            br#"{"url":"http://x","text":"a"}"#,
            br#"{"url":"http://x","lang":"en"}"#,
        ] {
            let r = JsonRequest::parse(bad).and_then(JsonRequest::into_request);
            assert!(matches!(r, Err(AnnounceError::BadRequest(_))), "{bad:?}");
        }
        assert!(JsonRequest::parse(br#"{"txt":"a"}"#).is_err());
    }
}
