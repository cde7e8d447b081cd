//! What the answer SDP says about the stream, made true:
//!
//! - **H.264 `profile-level-id`** (RFC 6184 §8.1): the stack answers with the
//!   offer's own format line (`peer.rs` configures the offered format as is), so a viewer offering `42e01f` heard "Constrained
//!   Baseline 3.1" while it was sent 1080p High 4.0. [`announce`] derives the
//!   answer's value from the SPS of the stream actually sent: the profile and its
//!   constraint flags stay those of the picked offered format (RFC 6184 §8.2.2
//!   makes them symmetric: an answer must keep them or drop the format), the level
//!   is the stream's. Bytes may differ while the profile is the same (x264's
//!   Constrained Baseline is `42c0`, the browsers offer `42e0`), so profiles are
//!   compared as RFC 6184 Table 5 names them ([`ProfileLevel::profile`]). When the
//!   offer has no format of the stream's profile, or forbids a higher level (no
//!   `level-asymmetry-allowed=1`), the answer is the closest the offer allows and
//!   [`Fit`] says what is off, for the log.
//! - **H.265 `level-id`** (RFC 7798 §7.2.2): the answer keeps the offered format's
//!   profile and tier (they are symmetric) and may only lower `level-id`;
//!   [`announce_h265`] lowers it to the stream's level, or keeps the offer's when
//!   the stream's is higher, and [`Fit`] says so.
//!
//! Pure text processing on the answer the stack produced; no WebRTC state.

use super::sdp::{Codec, h265_profile_tier_level};
use crate::media::VideoCodec;
use crate::media::h264::ProfileLevel;

/// The `profile-level-id` of an offered format; absent means `420010` (RFC 6184
/// §8.1: Baseline, level 1.0).
fn offered(c: &Codec) -> Option<ProfileLevel> {
    ProfileLevel::parse(c.fmtp_param("profile-level-id").unwrap_or("420010"))
}

/// How close the announced `profile-level-id` is to the stream's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fit {
    /// The stream's profile and level.
    Exact,
    /// The offer has no format of the stream's profile: the offer's profile.
    Profile,
    /// The stream's level is above the offer's and the offer does not allow
    /// level asymmetry.
    Level,
}

impl Fit {
    /// Why the answer is not exactly the stream, for the log; `None` when it is.
    pub fn note(self, codec: VideoCodec) -> Option<String> {
        let name = match codec {
            VideoCodec::H264 => "H.264",
            VideoCodec::H265 => "H.265",
        };
        match (self, codec) {
            (Fit::Exact, _) => None,
            (Fit::Profile, _) => Some(format!(
                "the offer has no format of the stream's {name} profile; answering the closest it allows (strict decoders may refuse the stream)"
            )),
            (Fit::Level, VideoCodec::H264) => Some(
                "the stream's H.264 level is above the offer's and the offer does not allow level asymmetry (strict decoders may refuse the stream)".into(),
            ),
            (Fit::Level, VideoCodec::H265) => Some(
                "the stream's H.265 level is above the offer's; answering the offer's (strict decoders may refuse the stream)".into(),
            ),
        }
    }
}

/// The `profile-level-id` to answer for the offered format `offered` when the
/// stream sent is `stream` (from its SPS), and how close that is.
pub(crate) fn announce(format: &Codec, stream: ProfileLevel) -> (ProfileLevel, Fit) {
    let Some(offer) = offered(format) else {
        return (stream, Fit::Profile);
    };
    let answer = ProfileLevel {
        level_idc: stream.level_idc,
        ..offer
    };
    let asymmetry = format.fmtp_param("level-asymmetry-allowed") == Some("1");
    let fit = if offer.profile() != stream.profile() {
        Fit::Profile
    } else if !asymmetry && stream.level_idc > offer.level_idc {
        Fit::Level
    } else {
        Fit::Exact
    };
    (answer, fit)
}

/// The `level-id` to answer for the offered H.265 format `format` when the stream
/// sent is described by `stream_fmtp` (`profile-id=…;tier-flag=…;level-id=…`), and
/// how close that is. RFC 7798 §7.2.2: profile and tier stay the offer's, the level
/// may only go down.
pub(crate) fn announce_h265(format: &Codec, stream_fmtp: &str) -> (u8, Fit) {
    let (profile, tier, level) = h265_profile_tier_level(&format.fmtp);
    let (s_profile, s_tier, s_level) = h265_profile_tier_level(stream_fmtp);
    let fit = if (profile, tier) != (s_profile, s_tier) {
        Fit::Profile
    } else if s_level > level {
        Fit::Level
    } else {
        Fit::Exact
    };
    (s_level.min(level), fit)
}

/// Sets `key=value` in an fmtp parameter list (appending it if absent).
fn with_param(params: &str, key: &str, value: &str) -> String {
    let mut found = false;
    let mut out: Vec<String> = params
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k.trim().eq_ignore_ascii_case(key) => {
                found = true;
                format!("{key}={value}")
            }
            _ => p.to_owned(),
        })
        .collect();
    if !found {
        out.push(format!("{key}={value}"));
    }
    out.join(";")
}

/// The final answer: `sdp` as the stack produced it, with the video format of
/// payload type `video_pt` setting `param` (key, value; e.g. `profile-level-id`
/// for H.264, `level-id` for H.265) if given. Line endings are kept.
pub(crate) fn rewrite(sdp: &str, video_pt: u8, param: Option<(&str, &str)>) -> String {
    let fmtp = format!("a=fmtp:{video_pt} ");
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let ending = &line[body.len()..];
        match (param, body.strip_prefix(&fmtp)) {
            (Some((key, value)), Some(params)) => {
                out.push_str(&fmtp);
                out.push_str(&with_param(params, key, value));
                out.push_str(ending);
            }
            _ => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h264(fmtp: &str) -> Codec {
        Codec {
            payload_type: 102,
            name: "H264".into(),
            clock_rate: 90_000,
            channels: 0,
            fmtp: fmtp.into(),
            feedback: vec![],
        }
    }

    fn pl(s: &str) -> ProfileLevel {
        ProfileLevel::parse(s).unwrap()
    }

    #[test]
    fn announces_the_stream_or_the_closest_the_offer_allows() {
        let high_40 = pl("640028");
        let asym = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=";
        // Chrome's High format: the stream's own value.
        let c = h264(&format!("{asym}64001f"));
        assert_eq!(announce(&c, high_40), (high_40, Fit::Exact));
        // A Constrained Baseline stream to a Constrained Baseline format: the same
        // profile although x264 sets other constraint flags than the browsers; the
        // offer's flags stay (RFC 6184 §8.2.2), the level is the stream's.
        let c = h264(&format!("{asym}42e01f"));
        assert_eq!(announce(&c, pl("42e01e")), (pl("42e01e"), Fit::Exact));
        assert_eq!(announce(&c, pl("42c028")), (pl("42e028"), Fit::Exact));
        // A High stream to a viewer offering only Constrained Baseline (aiortc):
        // its profile, the stream's level, and the log says so.
        assert_eq!(announce(&c, high_40), (pl("42e028"), Fit::Profile));
        // Constrained High offered for a plain High stream: another profile.
        let c = h264(&format!("{asym}640c1f"));
        assert_eq!(announce(&c, high_40), (pl("640c28"), Fit::Profile));
        // No level asymmetry: a higher stream level is still announced, and noted.
        let c = h264("packetization-mode=1;profile-level-id=64001f");
        assert_eq!(announce(&c, high_40), (high_40, Fit::Level));
        assert_eq!(announce(&c, pl("64001e")), (pl("64001e"), Fit::Exact));
        // No profile-level-id: Baseline 1.0 by default.
        let c = h264("packetization-mode=1");
        assert_eq!(announce(&c, high_40), (pl("420028"), Fit::Profile));
        let note = Fit::Profile.note(VideoCodec::H264).unwrap();
        assert!(note.contains("stream's H.264 profile"), "{note}");
        assert!(Fit::Exact.note(VideoCodec::H265).is_none());
    }

    const ANSWER: &str = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 102\r\nc=IN IP4 0.0.0.0\r\na=rtcp-mux\r\n\
a=rtpmap:102 H264/90000\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
a=rtcp-fb:102 nack pli\r\n\
a=candidate:1 1 udp 2130706431 127.0.0.1 40001 typ host\r\n\
a=end-of-candidates\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n";

    #[test]
    fn rewrites_the_h264_fmtp() {
        let out = rewrite(ANSWER, 102, Some(("profile-level-id", "42e028")));
        assert!(
            out.contains(
                "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e028\r\n"
            ),
            "{out}"
        );
        assert!(out.contains("a=fmtp:111 minptime=10;useinbandfec=1\r\n"));
        assert!(out.contains("a=candidate:1 1 udp"));
        assert!(out.contains("a=rtcp-mux\r\n"));
        assert_eq!(out.lines().count(), ANSWER.lines().count());
        // Without a known stream: nothing changes.
        assert_eq!(rewrite(ANSWER, 102, None), ANSWER);
        // A format line without profile-level-id gets one.
        let bare = ANSWER.replace(";profile-level-id=42e01f", "");
        let out = rewrite(&bare, 102, Some(("profile-level-id", "640028")));
        assert!(
            out.contains("a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640028\r\n"),
            "{out}"
        );
    }

    #[test]
    fn announces_the_h265_level_never_above_the_offer() {
        let format = |fmtp: &str| Codec {
            payload_type: 49,
            name: "H265".into(),
            clock_rate: 90_000,
            channels: 0,
            fmtp: fmtp.into(),
            feedback: vec![],
        };
        let chrome = format("level-id=180;profile-id=1;tier-flag=0;tx-mode=SRST");
        let main_31 = "profile-id=1;tier-flag=0;level-id=93";
        assert_eq!(announce_h265(&chrome, main_31), (93, Fit::Exact));
        // Level 6 stream, level 3.1 (the default) offered: the offer's level, noted.
        let level_6 = "profile-id=1;tier-flag=0;level-id=180";
        assert_eq!(announce_h265(&format(""), level_6), (93, Fit::Level));
        // A Main 10 stream to a Main-only offer: noted.
        let main10 = "profile-id=2;tier-flag=0;level-id=120";
        assert_eq!(announce_h265(&chrome, main10), (120, Fit::Profile));
        let h265_answer = ANSWER.replace("102", "49").replace("H264", "H265").replace(
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
            "level-id=180;profile-id=1;tier-flag=0;tx-mode=SRST",
        );
        let out = rewrite(&h265_answer, 49, Some(("level-id", "93")));
        assert!(
            out.contains("a=fmtp:49 level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST\r\n"),
            "{out}"
        );
    }
}
