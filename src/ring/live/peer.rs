//! Builds the client side of the call the way Ring's own web client offers it
//! (ring-api.md §6.5): audio sendrecv (Opus 48000/2 pt 111, PCMU/8000 pt 0),
//! video recvonly (H.264 packetization-mode=1, profile-level-id=640029 pt 102,
//! rtx 103, nack, pli, fir, transport-cc, goog-remb). With
//! `LiveOptions::h265`, H.265 (pt 104, rtx 105) is offered after H.264
//! (`docs/design/0009-h265.md`).
//!
//! The stack is str0m in RTP mode (`docs/design/0012-ring-call-str0m.md`): it
//! hands out RTP packets (retransmissions already unwrapped) that the call
//! depacketizes itself, and sends the talkback RTP the call builds. Only
//! construction lives here; `pump.rs` drives the instance.

use std::time::{Duration, Instant};

use str0m::change::SdpPendingOffer;
use str0m::format::{Codec, FormatParams};
use str0m::media::{Direction, Frequency, MediaKind, Mid, Pt};
use str0m::{Rtc, RtcError};

use super::{AudioCodec, LiveOptions};
use crate::media::VideoCodec;

/// Payload type we offer for Opus.
pub(crate) const PT_OPUS: u8 = 111;
/// Payload type of PCMU (static).
pub(crate) const PT_PCMU: u8 = 0;
/// Payload type we offer for H.264.
pub(crate) const PT_H264: u8 = 102;
/// Payload type we offer for H.264 retransmissions (RFC 4588).
const PT_RTX: u8 = 103;
/// Payload type of H.265, offered after H.264 only with [`LiveOptions::h265`].
pub(crate) const PT_H265: u8 = 104;
/// Payload type of H.265 retransmissions.
const PT_H265_RTX: u8 = 105;
/// The H.264 profile-level-id Ring's web client offers (High, level 4.1).
const H264_PROFILE_LEVEL: u32 = 0x64_0029;
/// How often the stack reports transport statistics (NACKs sent).
const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// A new instance with its offer applied locally, waiting for Ring's answer.
pub(crate) struct Offered {
    pub(crate) rtc: Rtc,
    pub(crate) pending: SdpPendingOffer,
    /// The offer's SDP (sent in `live_view`).
    pub(crate) sdp: String,
    /// m-line 0: talkback out, camera audio in.
    pub(crate) audio_mid: Mid,
    /// m-line 1: camera video in.
    pub(crate) video_mid: Mid,
}

/// The codecs of the offer, in our order of preference.
fn configure(opts: &LiveOptions, start: Instant) -> Rtc {
    let mut cfg = Rtc::builder()
        .set_crypto_provider(crate::base::str0m_crypto::provider())
        .clear_codecs()
        .set_rtp_mode(true)
        .set_stats_interval(Some(STATS_INTERVAL));
    let codecs = cfg.codec_config();
    codecs.add_config(
        PT_OPUS.into(),
        None,
        Codec::Opus,
        Frequency::FORTY_EIGHT_KHZ,
        Some(2),
        FormatParams {
            min_p_time: Some(10),
            use_inband_fec: Some(true),
            ..Default::default()
        },
    );
    codecs.add_config(
        PT_PCMU.into(),
        None,
        Codec::PCMU,
        Frequency::EIGHT_KHZ,
        None,
        FormatParams::default(),
    );
    codecs.add_h264(
        PT_H264.into(),
        Some(PT_RTX.into()),
        true,
        H264_PROFILE_LEVEL,
    );
    if opts.h265 {
        // After H.264: our preference order. Ring picks H.265 anyway for cameras in
        // HEVC mode (docs/design/0009-h265.md). No fmtp, as Ring's clients offer it.
        codecs.add_config(
            PT_H265.into(),
            Some(PT_H265_RTX.into()),
            Codec::H265,
            Frequency::NINETY_KHZ,
            None,
            FormatParams::default(),
        );
    }
    cfg.build(start)
}

/// Builds the instance and its offer: audio sendrecv (m-line 0), video
/// recvonly (m-line 1). The offer carries no candidates: they are trickled.
pub(crate) fn offer(opts: &LiveOptions, start: Instant) -> Result<Offered, RtcError> {
    let mut rtc = configure(opts, start);
    let mut change = rtc.sdp_api();
    let audio_mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let video_mid = change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    let (offer, pending) = change
        .apply()
        .ok_or_else(|| RtcError::Io(std::io::Error::other("the offer has no media")))?;
    let mut sdp = offer.to_sdp_string();
    if let Some(ssrc) = opts.talk_ssrc {
        sdp = announce_talk_ssrc(&sdp, ssrc);
    }
    Ok(Offered {
        rtc,
        pending,
        sdp,
        audio_mid,
        video_mid,
    })
}

/// The offer with the audio section's SSRC replaced by `ssrc`
/// ([`LiveOptions::talk_ssrc`]), so Ring sees talkback arrive on an announced
/// stream. The instance creates its own stream with a random SSRC when the
/// answer is applied; the pump then switches it to `ssrc` (`pump.rs`).
fn announce_talk_ssrc(sdp: &str, ssrc: u32) -> String {
    let mut section = 0;
    let mut old: Option<String> = None;
    let mut out = String::with_capacity(sdp.len() + 16);
    for line in sdp.split_inclusive('\n') {
        if line.starts_with("m=") {
            section += 1;
        }
        let mut line = line.to_owned();
        if section == 1
            && let Some(rest) = line.strip_prefix("a=ssrc:")
        {
            // Only the section's first SSRC (str0m writes one for audio).
            let id = rest.split(' ').next().unwrap_or_default();
            if old.get_or_insert_with(|| id.to_owned()) == id {
                line = format!("a=ssrc:{ssrc}{}", &rest[id.len()..]);
            }
        }
        out.push_str(&line);
    }
    out
}

/// What a payload type of ours carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Carried {
    Video(VideoCodec),
    Audio(AudioCodec),
    Other,
}

/// The codec behind one of the payload types we offered (Ring's answer keeps
/// the offer's numbers; retransmissions arrive already unwrapped).
pub(crate) fn carried(pt: Pt) -> Carried {
    match *pt {
        PT_H264 => Carried::Video(VideoCodec::H264),
        PT_H265 => Carried::Video(VideoCodec::H265),
        PT_OPUS => Carried::Audio(AudioCodec::Opus),
        PT_PCMU => Carried::Audio(AudioCodec::Pcmu),
        _ => Carried::Other,
    }
}

/// The payload type we offered for talkback in `codec`.
pub(crate) fn audio_pt(codec: AudioCodec) -> u8 {
    match codec {
        AudioCodec::Opus => PT_OPUS,
        AudioCodec::Pcmu => PT_PCMU,
    }
}

#[cfg(test)]
mod tests {
    use str0m::change::SdpAnswer;

    use super::*;

    #[test]
    fn offer_lists_ring_web_client_codecs() {
        let o = offer(&LiveOptions::default(), Instant::now()).unwrap();
        let sdp = o.sdp;
        assert!(sdp.contains("m=audio"), "{sdp}");
        assert!(sdp.contains("a=rtpmap:111 opus/48000/2"), "{sdp}");
        assert!(sdp.contains("a=rtpmap:0 PCMU/8000"), "{sdp}");
        assert!(sdp.contains("a=rtpmap:102 H264/90000"), "{sdp}");
        assert!(sdp.contains("a=fmtp:103 apt=102"), "{sdp}");
        assert!(sdp.contains("profile-level-id=640029"), "{sdp}");
        assert!(sdp.contains("a=rtcp-fb:102 nack pli"), "{sdp}");
        assert!(sdp.contains("a=recvonly"), "{sdp}");
        assert!(sdp.contains("a=sendrecv"), "{sdp}");
        assert!(!sdp.contains("H265"), "{sdp}");
        assert!(!sdp.contains("a=candidate"), "{sdp}");
        let video = sdp.find("m=video").unwrap();
        assert!(sdp.find("m=audio").unwrap() < video);

        let h265 = LiveOptions {
            h265: true,
            ..LiveOptions::default()
        };
        let sdp = offer(&h265, Instant::now()).unwrap().sdp;
        let (a, b) = (
            sdp.find("H264/90000").unwrap(),
            sdp.find("H265/90000").unwrap(),
        );
        assert!(a < b, "H.264 first: {sdp}");
        assert!(sdp.contains("a=fmtp:105 apt=104"), "{sdp}");
    }

    #[test]
    fn talk_ssrc_is_announced_in_the_audio_section_only() {
        let opts = LiveOptions {
            talk_ssrc: Some(305_419_896),
            ..LiveOptions::default()
        };
        let sdp = offer(&opts, Instant::now()).unwrap().sdp;
        let (audio, video) = sdp.split_at(sdp.find("m=video").unwrap());
        let ssrcs: Vec<&str> = audio.lines().filter(|l| l.starts_with("a=ssrc:")).collect();
        assert!(!ssrcs.is_empty(), "{sdp}");
        assert!(
            ssrcs.iter().all(|l| l.starts_with("a=ssrc:305419896 ")),
            "{sdp}"
        );
        assert!(!video.contains("305419896"), "{sdp}");
    }

    #[test]
    fn payload_types_map_to_codecs() {
        assert_eq!(carried(102.into()), Carried::Video(VideoCodec::H264));
        assert_eq!(carried(104.into()), Carried::Video(VideoCodec::H265));
        assert_eq!(carried(111.into()), Carried::Audio(AudioCodec::Opus));
        assert_eq!(carried(0.into()), Carried::Audio(AudioCodec::Pcmu));
        assert_eq!(carried(103.into()), Carried::Other);
        assert_eq!(audio_pt(AudioCodec::Pcmu), 0);
    }

    /// An answer in the shape libwebrtc-based media servers write (Ring's
    /// included: candidates in the answer since 2024, `generation`/`network-id`
    /// on candidate lines, a TCP candidate, `a=sendrecv` on the section we offered
    /// recvonly, RTX with an FID group), after `signalling::fix_answer`, is
    /// accepted; so is a trickled libwebrtc candidate line.
    #[test]
    fn accepts_a_libwebrtc_style_answer() {
        let mut o = offer(&LiveOptions::default(), Instant::now()).unwrap();
        let mids: Vec<&str> = o
            .sdp
            .lines()
            .filter_map(|l| l.strip_prefix("a=mid:"))
            .collect();
        let (a, v) = (mids[0], mids[1]);
        let fp = ["AB"; 32].join(":");
        let ice =
            "a=ice-ufrag:rIng\r\na=ice-pwd:0123456789abcdefghijklmn\r\na=ice-options:trickle\r\n";
        let answer = format!(
            "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
             a=group:BUNDLE {a} {v}\r\na=msid-semantic: WMS\r\n\
             m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
             a=candidate:1 1 udp 2122260223 203.0.113.5 50000 typ host generation 0 network-id 1\r\n\
             a=candidate:2 1 tcp 1518280447 203.0.113.5 9 typ host tcptype active generation 0 network-id 1\r\n\
             {ice}a=fingerprint:sha-256 {fp}\r\na=setup:active\r\na=mid:{a}\r\n\
             a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=sendrecv\r\na=msid:- audio0\r\n\
             a=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\n\
             a=fmtp:111 minptime=10;useinbandfec=1\r\na=ssrc:1001 cname:ring\r\n\
             m=video 9 UDP/TLS/RTP/SAVPF 102 103\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
             {ice}a=fingerprint:sha-256 {fp}\r\na=setup:active\r\na=mid:{v}\r\na=sendrecv\r\n\
             a=msid:- video0\r\na=rtcp-mux\r\na=rtcp-rsize\r\na=rtpmap:102 H264/90000\r\n\
             a=rtcp-fb:102 goog-remb\r\na=rtcp-fb:102 transport-cc\r\na=rtcp-fb:102 ccm fir\r\n\
             a=rtcp-fb:102 nack\r\na=rtcp-fb:102 nack pli\r\n\
             a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640029\r\n\
             a=rtpmap:103 rtx/90000\r\na=fmtp:103 apt=102\r\na=ssrc-group:FID 2001 2002\r\n\
             a=ssrc:2001 cname:ring\r\na=ssrc:2002 cname:ring\r\n"
        );
        let fixed = super::super::signalling::fix_answer(&o.sdp, &answer);
        let parsed = SdpAnswer::from_sdp_string(&fixed).unwrap();
        o.rtc.sdp_api().accept_answer(o.pending, parsed).unwrap();
        let trickled = "candidate:3 1 udp 1686052607 198.51.100.9 61000 typ srflx raddr 10.0.0.2 rport 61000 generation 0 ufrag rIng network-id 1 network-cost 10";
        o.rtc
            .add_remote_candidate(str0m::Candidate::from_sdp_string(trickled).unwrap());
    }
}
