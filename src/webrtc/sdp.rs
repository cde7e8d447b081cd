//! Reading a viewer's SDP before the WebRTC stack sees it: validates the offer, keeps the
//! video formats we could send (H.264 packetization-mode=1, RFC 6184; H.265, RFC
//! 7798), picks the one for the camera's stream ([`Offer::pick_video`]: the stream's
//! codec, then the closest profile) and the Opus format for audio both ways, and
//! parses WHEP trickle-ICE fragments (RFC 8840 `application/trickle-ice-sdpfrag`).
//!
//! Pure text processing: no I/O, no WebRTC state. The session configures exactly
//! the picked formats (with the offer's payload types) in its WebRTC instance
//! (`peer.rs`), so the answer contains one video format (and its retransmission
//! format) and one Opus format.

use std::io::Cursor;

use webrtc::sdp::MediaDescription;
use webrtc::sdp::SessionDescription;

use crate::media::VideoCodec;
use crate::media::h264::{Profile, ProfileLevel};

/// One RTP format of an offer's m-line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Codec {
    /// Payload type, as offered.
    pub payload_type: u8,
    /// Encoding name, e.g. `H264`, `opus` (case as offered).
    pub name: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Channels (audio), 0 when not given.
    pub channels: u16,
    /// The `a=fmtp` parameters, as offered (empty if none).
    pub fmtp: String,
    /// `a=rtcp-fb` entries: (type, parameter).
    pub feedback: Vec<(String, String)>,
}

impl Codec {
    /// The value of fmtp parameter `key`, if present.
    pub fn fmtp_param(&self, key: &str) -> Option<&str> {
        fmtp_value(&self.fmtp, key)
    }
}

/// What the viewer does with a media kind, from the offer's direction attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Direction {
    /// The viewer receives this kind from us.
    pub viewer_receives: bool,
    /// The viewer sends this kind to us.
    pub viewer_sends: bool,
}

/// A validated offer and the formats picked from it.
#[derive(Clone, Debug)]
pub(crate) struct Offer {
    /// The offer, with its `bundle-only` sections given a port
    /// ([`with_bundle_only_ports`]); otherwise unchanged.
    pub sdp: String,
    /// The formats of the first video m-line the viewer receives, in offer order; at
    /// least one is H.264 packetization-mode=1 or H.265.
    pub video_formats: Vec<Codec>,
    /// The Opus format (both directions), if audio was offered with Opus.
    pub audio: Option<(Codec, Direction)>,
    /// The viewer's ICE username fragment (to tell trickle from restart).
    pub ice_ufrag: Option<String>,
}

/// The video format of a session: the codec we send and the offered format we
/// send it as (its payload type and `fmtp`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct VideoFormat {
    /// The stream's codec.
    pub codec: VideoCodec,
    /// The offered format.
    pub format: Codec,
}

impl Offer {
    /// Whether the offer has a format we can send `codec` as.
    pub fn offers(&self, codec: VideoCodec) -> bool {
        self.pick_video(codec, None).is_some()
    }

    /// The offered format to send a `codec` stream as. `stream_fmtp` is the stream's
    /// own description, if known ([`crate::media::VideoParams::profile_level_id`]:
    /// H.264 `profile-level-id`, H.265 `profile-id=…;tier-flag=…;level-id=…`).
    pub fn pick_video(&self, codec: VideoCodec, stream_fmtp: Option<&str>) -> Option<VideoFormat> {
        let format = match codec {
            VideoCodec::H264 => pick_h264(&self.video_formats, stream_fmtp),
            VideoCodec::H265 => pick_h265(&self.video_formats, stream_fmtp),
        };
        format.map(|f| VideoFormat {
            codec,
            format: f.clone(),
        })
    }

    /// The offered retransmission format (RFC 4588 `rtx` with `apt=<pt>`) of video
    /// payload type `pt`, if any.
    pub fn video_rtx(&self, pt: u8) -> Option<u8> {
        let apt = pt.to_string();
        self.video_formats
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case("rtx") && c.fmtp_param("apt") == Some(&apt))
            .map(|c| c.payload_type)
    }
}

/// Why an offer was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum OfferError {
    /// Not parseable SDP.
    Malformed(String),
    /// Valid SDP without anything we can send.
    Unsupported(String),
}

/// The formats of an m-line with their attributes, in offer order; each payload
/// type once. Linear in the m-line's size (payload types index a table).
fn media_codecs(m: &MediaDescription) -> Vec<Codec> {
    let mut out: Vec<Codec> = Vec::new();
    let mut index: [Option<usize>; 128] = [None; 128];
    for f in &m.media_name.formats {
        let Ok(pt) = f.parse::<u8>() else { continue };
        let Some(slot) = index.get_mut(usize::from(pt)) else {
            continue;
        };
        if slot.is_some() {
            continue;
        }
        *slot = Some(out.len());
        out.push(Codec {
            payload_type: pt,
            name: String::new(),
            clock_rate: 0,
            channels: 0,
            fmtp: String::new(),
            feedback: Vec::new(),
        });
    }
    for a in &m.attributes {
        let Some(v) = a.value.as_deref() else {
            continue;
        };
        let Some((pt, rest)) = v.split_once(' ') else {
            continue;
        };
        let Ok(pt) = pt.parse::<u8>() else { continue };
        let Some(c) = index
            .get(usize::from(pt))
            .copied()
            .flatten()
            .and_then(|i| out.get_mut(i))
        else {
            continue;
        };
        let rest = rest.trim();
        match a.key.as_str() {
            "rtpmap" => {
                let mut parts = rest.split('/');
                c.name = parts.next().unwrap_or_default().to_owned();
                c.clock_rate = parts.next().and_then(|r| r.parse().ok()).unwrap_or(0);
                c.channels = parts.next().and_then(|r| r.parse().ok()).unwrap_or(0);
            }
            "fmtp" => c.fmtp = rest.to_owned(),
            "rtcp-fb" => {
                let (typ, param) = rest.split_once(' ').unwrap_or((rest, ""));
                c.feedback.push((typ.to_owned(), param.to_owned()));
            }
            _ => {}
        }
    }
    out
}

fn direction(m: &MediaDescription, session: &SessionDescription) -> Direction {
    let has = |k: &str| m.attribute(k).is_some() || session.attributes.iter().any(|a| a.key == k);
    let (viewer_sends, viewer_receives) = if has("inactive") {
        (false, false)
    } else if has("recvonly") {
        (false, true)
    } else if has("sendonly") {
        (true, false)
    } else {
        (true, true)
    };
    Direction {
        viewer_receives,
        viewer_sends,
    }
}

/// Parses RFC 6184 `profile-level-id`. Absent means `420010` (RFC 6184 §8.1
/// default: Baseline, level 1.0).
fn profile_level(c: &Codec) -> Option<ProfileLevel> {
    ProfileLevel::parse(c.fmtp_param("profile-level-id").unwrap_or("420010"))
}

/// Picks the H.264 format to send: packetization-mode=1 only (we send FU-A/STAP-A);
/// then `level-asymmetry-allowed=1` (so a higher-level stream is fine); then the
/// stream's own profile (`stream_profile`, six hex digits, compared as RFC 6184
/// names profiles; Ring sends High); then its `profile_idc` (Constrained High for
/// High); then Constrained Baseline as the most widely decodable; ties go to offer
/// order (the viewer's preference).
pub(crate) fn pick_h264<'a>(
    codecs: &'a [Codec],
    stream_profile: Option<&str>,
) -> Option<&'a Codec> {
    let want = stream_profile
        .and_then(ProfileLevel::parse)
        .unwrap_or(ProfileLevel {
            profile_idc: 0x64,
            iop: 0,
            level_idc: 0x28,
        });
    codecs
        .iter()
        .filter(|c| is_h264_mode_1(c))
        .filter_map(|c| profile_level(c).map(|pl| (c, pl)))
        .enumerate()
        .max_by_key(|(i, (c, pl))| {
            let asym = c.fmtp_param("level-asymmetry-allowed") == Some("1");
            let same_profile = pl.profile() == want.profile();
            let same_idc = pl.profile_idc == want.profile_idc;
            let constrained_baseline = pl.profile() == Profile::ConstrainedBaseline;
            (
                asym,
                same_profile,
                same_idc,
                constrained_baseline,
                std::cmp::Reverse(*i),
            )
        })
        .map(|(_, (c, _))| c)
}

/// The value of parameter `key` in an `fmtp` list (`k=v;k=v`), if present.
pub(crate) fn fmtp_value<'a>(fmtp: &'a str, key: &str) -> Option<&'a str> {
    fmtp.split(';').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        k.trim().eq_ignore_ascii_case(key).then_some(v.trim())
    })
}

/// RFC 7798 §7.1 `profile-id`, `tier-flag` and `level-id` of an H.265 `fmtp` list,
/// with the RFC's defaults when absent (Main, Main tier, level 3.1).
pub(crate) fn h265_profile_tier_level(fmtp: &str) -> (u8, u8, u8) {
    let get = |key: &str, default: u8| {
        fmtp_value(fmtp, key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    (
        get("profile-id", 1),
        get("tier-flag", 0),
        get("level-id", 93),
    )
}

/// Picks the H.265 format to send (RFC 7798, no DONL, so any offered H.265 format
/// can carry the stream): first the stream's `profile-id` (a decoder may not take
/// another; Ring sends Main or Main 10), then its `tier-flag`, then a `level-id` at
/// least the stream's; ties go to offer order. `stream_fmtp` unknown: the first
/// offered H.265 format.
pub(crate) fn pick_h265<'a>(codecs: &'a [Codec], stream_fmtp: Option<&str>) -> Option<&'a Codec> {
    let want = stream_fmtp.map(h265_profile_tier_level);
    codecs
        .iter()
        .filter(|c| is_h265(c))
        .enumerate()
        .max_by_key(|(i, c)| {
            let (profile, tier, level) = h265_profile_tier_level(&c.fmtp);
            let fits = want.map_or((false, false, false), |(p, t, l)| {
                (profile == p, tier == t, level >= l)
            });
            (fits, std::cmp::Reverse(*i))
        })
        .map(|(_, c)| c)
}

/// Whether `c` is H.264 with packetization-mode=1 (we send FU-A/STAP-A).
fn is_h264_mode_1(c: &Codec) -> bool {
    c.name.eq_ignore_ascii_case("h264") && c.fmtp_param("packetization-mode") == Some("1")
}

/// Whether `c` is H.265 at 90 kHz (RFC 7798 §7.1).
fn is_h265(c: &Codec) -> bool {
    c.name.eq_ignore_ascii_case("h265") && c.clock_rate == 90_000
}

/// Whether `c` is a video format we can send: H.264 packetization-mode=1 or H.265.
fn sendable(c: &Codec) -> bool {
    is_h264_mode_1(c) || is_h265(c)
}

/// `sdp` with a port on its `bundle-only` media sections. An offerer that bundles
/// everything (GStreamer's webrtcbin with `max-bundle`) marks every section but
/// the first `a=bundle-only` with port 0 (RFC 8843 §7.2): part of the bundle, not
/// rejected. Everything downstream (this parser, the WebRTC stack) reads port 0
/// as rejected, so such a section gets the placeholder port 9 every other
/// bundled section has. Done once, here, where the offer enters.
fn with_bundle_only_ports(sdp: &str) -> String {
    let lines: Vec<&str> = sdp.split_inclusive('\n').collect();
    let mut out = String::with_capacity(sdp.len());
    for (i, line) in lines.iter().enumerate() {
        if let Some((kind, rest)) = line.strip_prefix("m=").and_then(|m| m.split_once(' '))
            && let Some(more) = rest.strip_prefix("0 ")
            && lines[i + 1..]
                .iter()
                .take_while(|l| !l.starts_with("m="))
                .any(|l| l.trim_end() == "a=bundle-only")
        {
            out.push_str(&format!("m={kind} 9 {more}"));
            continue;
        }
        out.push_str(line);
    }
    out
}

/// Parses and validates a viewer's offer; [`Offer::pick_video`] then picks the
/// format for the stream.
pub(crate) fn parse_offer(sdp: &str) -> Result<Offer, OfferError> {
    if sdp.trim().is_empty() {
        return Err(OfferError::Malformed("empty body".into()));
    }
    if !sdp.trim_start().starts_with("v=0") {
        return Err(OfferError::Malformed("SDP must start with v=0".into()));
    }
    let sdp = &with_bundle_only_ports(sdp);
    let desc = SessionDescription::unmarshal(&mut Cursor::new(sdp.as_bytes()))
        .map_err(|e| OfferError::Malformed(e.to_string()))?;
    if desc.media_descriptions.is_empty() {
        return Err(OfferError::Malformed("no m= lines".into()));
    }
    let mut video = None;
    let mut audio = None;
    let mut ice_ufrag = desc.attribute("ice-ufrag").cloned();
    for m in &desc.media_descriptions {
        if m.media_name.port.value == 0 {
            continue; // rejected / stopped m-line
        }
        if ice_ufrag.is_none() {
            ice_ufrag = m.attribute("ice-ufrag").flatten().map(str::to_owned);
        }
        let dir = direction(m, &desc);
        let codecs = media_codecs(m);
        match m.media_name.media.as_str() {
            "video" if video.is_none() && dir.viewer_receives => {
                video = Some(codecs);
            }
            "audio" if audio.is_none() && (dir.viewer_receives || dir.viewer_sends) => {
                audio = codecs
                    .iter()
                    .find(|c| c.name.eq_ignore_ascii_case("opus") && c.clock_rate == 48_000)
                    .map(|c| (c.clone(), dir));
            }
            _ => {}
        }
    }
    if ice_ufrag.is_none() {
        return Err(OfferError::Malformed("no a=ice-ufrag".into()));
    }
    let video_formats = video.filter(|v| v.iter().any(sendable)).ok_or_else(|| {
        OfferError::Unsupported(
            "the offer must receive video with H.264 packetization-mode=1 or H.265 (no transcoding)"
                .into(),
        )
    })?;
    Ok(Offer {
        sdp: sdp.to_owned(),
        video_formats,
        audio,
        ice_ufrag,
    })
}

/// One candidate of a trickle-ICE fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FragCandidate {
    /// `candidate:...` (without `a=`).
    pub candidate: String,
    /// The m-line's `a=mid`, if the fragment gave one.
    pub mid: Option<String>,
    /// Index of the m-line section in the fragment (0 if none).
    pub mline_index: u16,
}

/// A parsed `application/trickle-ice-sdpfrag` body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Fragment {
    /// `a=ice-ufrag`, if present.
    pub ufrag: Option<String>,
    /// Candidates, in order.
    pub candidates: Vec<FragCandidate>,
    /// `a=end-of-candidates` seen.
    pub end_of_candidates: bool,
}

/// Parses a trickle-ICE SDP fragment (RFC 8840 §9).
pub(crate) fn parse_fragment(body: &str) -> Result<Fragment, String> {
    let mut f = Fragment::default();
    let mut mid = None;
    let mut mline: Option<u16> = None;
    for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("a=ice-ufrag:") {
            f.ufrag = Some(rest.trim().to_owned());
        } else if let Some(rest) = line.strip_prefix("a=mid:") {
            mid = Some(rest.trim().to_owned());
        } else if line.starts_with("m=") {
            mline = Some(mline.map_or(0, |i| i.saturating_add(1)));
            mid = None;
        } else if let Some(rest) = line.strip_prefix("a=candidate:") {
            if rest.split_whitespace().count() < 8 {
                return Err(format!("malformed candidate line {line:?}"));
            }
            f.candidates.push(FragCandidate {
                candidate: format!("candidate:{}", rest.trim()),
                mid: mid.clone(),
                mline_index: mline.unwrap_or(0),
            });
        } else if line == "a=end-of-candidates" {
            f.end_of_candidates = true;
        } else if !line.starts_with("a=") || line.len() < 3 {
            return Err(format!("unexpected line {line:?}"));
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Video formats the way Chrome offers them (trimmed).
    const CHROME_OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\n\
a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n\
a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:0 PCMU/8000\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 102 104 106 108 112\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=recvonly\r\n\
a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtpmap:102 H264/90000\r\na=rtcp-fb:102 nack pli\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
a=rtpmap:104 H264/90000\r\na=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f\r\n\
a=rtpmap:106 H264/90000\r\na=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
a=rtpmap:108 H264/90000\r\na=fmtp:108 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f\r\n\
a=rtpmap:112 H264/90000\r\na=fmtp:112 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f\r\n";

    #[test]
    fn bundle_only_sections_get_a_port_and_nothing_else_changes() {
        let offer = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\na=mid:video0\r\n\
                     m=audio 0 UDP/TLS/RTP/SAVPF 111\r\na=bundle-only\r\na=mid:audio1\r\n\
                     m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n";
        assert_eq!(
            with_bundle_only_ports(offer),
            offer.replace("m=audio 0 ", "m=audio 9 "),
            "only the bundle-only section; the rejected one stays"
        );
        // Odd input passes through without a panic.
        for odd in ["\u{3000}v=0\nm=", "m=audio 0", "m=\na=bundle-only", ""] {
            assert_eq!(with_bundle_only_ports(odd), odd);
        }
    }

    #[test]
    fn picks_high_profile_mode_1_and_opus() {
        let o = parse_offer(CHROME_OFFER).unwrap();
        let v = o.pick_video(VideoCodec::H264, None).unwrap();
        assert_eq!((v.codec, v.format.payload_type), (VideoCodec::H264, 112));
        assert_eq!(v.format.feedback, vec![]);
        let (a, dir) = o.audio.clone().unwrap();
        assert_eq!((a.payload_type, a.channels), (111, 2));
        assert!(dir.viewer_sends && dir.viewer_receives);
        assert_eq!(o.ice_ufrag.as_deref(), Some("abcd"));
        // A Constrained Baseline stream prefers 42e01f.
        let v = o.pick_video(VideoCodec::H264, Some("42e01f")).unwrap();
        assert_eq!(v.format.payload_type, 106);
        // No H.265 in Chrome's offer here.
        assert!(!o.offers(VideoCodec::H265));
        assert!(o.pick_video(VideoCodec::H265, None).is_none());
    }

    /// Chrome's H.265 formats (M136+ with a hardware decoder), after its H.264 ones.
    fn with_h265(offer: &str) -> String {
        offer.replace(
            "m=video 9 UDP/TLS/RTP/SAVPF 96 102 104 106 108 112\r\n",
            "m=video 9 UDP/TLS/RTP/SAVPF 96 102 104 106 108 112 49 51\r\n",
        ) + "a=rtpmap:49 H265/90000\r\na=rtcp-fb:49 nack pli\r\n\
a=fmtp:49 level-id=180;profile-id=1;tier-flag=0;tx-mode=SRST\r\n\
a=rtpmap:51 H265/90000\r\na=fmtp:51 level-id=180;profile-id=2;tier-flag=0;tx-mode=SRST\r\n"
    }

    #[test]
    fn picks_h265_by_the_streams_profile() {
        let o = parse_offer(&with_h265(CHROME_OFFER)).unwrap();
        assert!(o.offers(VideoCodec::H265) && o.offers(VideoCodec::H264));
        let main = "profile-id=1;tier-flag=0;level-id=93";
        let v = o.pick_video(VideoCodec::H265, Some(main)).unwrap();
        assert_eq!((v.codec, v.format.payload_type), (VideoCodec::H265, 49));
        let main10 = "profile-id=2;tier-flag=0;level-id=150";
        let v = o.pick_video(VideoCodec::H265, Some(main10)).unwrap();
        assert_eq!(v.format.payload_type, 51);
        // Unknown stream: the viewer's first H.265 format.
        assert_eq!(
            o.pick_video(VideoCodec::H265, None)
                .unwrap()
                .format
                .payload_type,
            49
        );
        // An H.264 stream still picks H.264.
        assert_eq!(
            o.pick_video(VideoCodec::H264, None)
                .unwrap()
                .format
                .payload_type,
            112
        );
        // An offer with H.265 only is valid (an H.265 camera can serve it).
        let only = with_h265(CHROME_OFFER).replace("H264", "VP9");
        let o = parse_offer(&only).unwrap();
        assert!(o.offers(VideoCodec::H265) && !o.offers(VideoCodec::H264));
        // Defaults (RFC 7798 §7.1): Main, Main tier, level 3.1.
        assert_eq!(h265_profile_tier_level(""), (1, 0, 93));
        assert_eq!(
            h265_profile_tier_level("level-id=120; profile-id=2"),
            (2, 0, 120)
        );
    }

    #[test]
    fn level_asymmetry_wins_and_mode_0_never() {
        let c = |pt, fmtp: &str| Codec {
            payload_type: pt,
            name: "H264".into(),
            clock_rate: 90_000,
            channels: 0,
            fmtp: fmtp.into(),
            feedback: vec![],
        };
        let list = [
            c(1, "packetization-mode=1;profile-level-id=640c1f"),
            c(
                2,
                "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
            ),
            c(
                3,
                "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=640c1f",
            ),
        ];
        assert_eq!(pick_h264(&list, Some("640029")).unwrap().payload_type, 2);
        assert!(pick_h264(&list[2..], None).is_none());
        // Ties keep the viewer's order.
        let list = [
            c(
                7,
                "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f",
            ),
            c(
                8,
                "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640028",
            ),
        ];
        assert_eq!(pick_h264(&list, None).unwrap().payload_type, 7);
        // Profiles as RFC 6184 names them: High before Constrained High before
        // Baseline for a High stream; x264's Constrained Baseline (42c0) picks the
        // browsers' (42e0).
        let list = [
            c(
                1,
                "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
            ),
            c(
                2,
                "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f",
            ),
            c(
                3,
                "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f",
            ),
            c(
                4,
                "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
            ),
        ];
        assert_eq!(pick_h264(&list, Some("640028")).unwrap().payload_type, 3);
        assert_eq!(
            pick_h264(&list[..2], Some("640028")).unwrap().payload_type,
            2
        );
        assert_eq!(pick_h264(&list, Some("42c028")).unwrap().payload_type, 1);
    }

    #[test]
    fn rejects_bad_offers() {
        assert!(matches!(parse_offer(""), Err(OfferError::Malformed(_))));
        assert!(matches!(
            parse_offer("hello world"),
            Err(OfferError::Malformed(_))
        ));
        let vp_only = CHROME_OFFER.replace("H264", "VP9");
        assert!(matches!(
            parse_offer(&vp_only),
            Err(OfferError::Unsupported(_))
        ));
        let no_ufrag = CHROME_OFFER.replace("a=ice-ufrag:abcd\r\n", "");
        assert!(matches!(
            parse_offer(&no_ufrag),
            Err(OfferError::Malformed(_))
        ));
    }

    #[test]
    fn parses_trickle_fragments() {
        let body = "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n\
a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0\r\n\
a=candidate:3471623853 1 udp 2122194687 9b36eaac-bb2e-49bb-bb78-21c41c499900.local 61765 typ host\r\n\
a=end-of-candidates\r\n";
        let f = parse_fragment(body).unwrap();
        assert_eq!(f.ufrag.as_deref(), Some("EsAw"));
        assert_eq!(f.candidates.len(), 2);
        assert_eq!(f.candidates[0].mid.as_deref(), Some("0"));
        assert!(
            f.candidates[1]
                .candidate
                .starts_with("candidate:3471623853 ")
        );
        assert!(f.end_of_candidates);
        assert!(parse_fragment("a=candidate:1 2 3\r\n").is_err());
        assert!(parse_fragment("garbage\r\n").is_err());
        assert_eq!(parse_fragment("").unwrap(), Fragment::default());
    }
}
