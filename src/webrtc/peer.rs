//! Builds one viewer's WebRTC instance (str0m, sans-I/O, in RTP mode) and its
//! answer: exactly the formats picked from the offer, with the offer's payload
//! types (the video format, its RFC 4588 retransmission format when offered, and
//! Opus), ICE credentials of our own, and the host candidates the session bound
//! (`pump.rs` owns the sockets). The answer is complete (non-trickle): every
//! candidate is in it.
//!
//! RTP mode: the session writes RTP packets itself (one packetization per camera,
//! `payloads.rs`); the instance adds SRTP, answers NACKs from its retransmission
//! cache, sends sender reports and reports key frame requests. The Ring call runs
//! on the same stack (`docs/design/0012-ring-call-str0m.md`); the WHEP step is
//! `docs/design/0014-whep-str0m.md`.
//!
//! Only construction lives here; `pump.rs` drives the instance.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::format::{Codec as Str0mCodec, CodecConfig, FormatParams};
use str0m::media::Frequency;
use str0m::rtp::{Extension, ExtensionMap};
use str0m::{Candidate, IceCreds, Rtc};

use super::error::WhepError;
use super::sdp::{Codec, Offer, VideoFormat};
use crate::media::VideoCodec;

/// Packets each outgoing stream keeps for NACK retransmission: 512, about 3.5 s
/// of a 1.4 Mbit/s camera stream (1.2 s at 4 Mbit/s), far more than a
/// retransmission can usefully arrive in. The payloads are shared among viewers
/// (`payloads.rs`), so an entry is mostly its header; 512 per stream keep 16
/// cameras × 16 viewers under 200 MB (`docs/PERFORMANCE.md`).
pub(crate) const RTX_CACHE_PACKETS: usize = 512;
/// The oldest packet a NACK may still get.
pub(crate) const RTX_CACHE_AGE: Duration = Duration::from_secs(3);

/// A new instance and its answer to the offer.
pub(crate) struct Answered {
    pub rtc: Rtc,
    /// The answer SDP, with our candidates.
    pub sdp: String,
}

/// The RTP header extensions a viewer's session may negotiate: the stack's
/// standard set without the two that only feed bandwidth estimation
/// (transport-wide sequence numbers, absolute send time).
///
/// The camera's stream is passed through, never re-encoded, so nothing here
/// could act on an estimate. With transport-cc negotiated every viewer sends a
/// feedback packet about every 100 ms (Chromium and webrtc-rs alike), and with
/// abs-send-time and goog-remb Chromium sends REMB: each one a packet the
/// session would wake up for, decrypt and parse for nothing
/// (`docs/PERFORMANCE.md`). NACK, PLI, FIR and the RTCP reports do not depend
/// on them. See also [`without_bandwidth_feedback`].
fn extensions() -> ExtensionMap {
    let mut exts = ExtensionMap::empty();
    for (id, ext) in ExtensionMap::standard().iter() {
        if !matches!(
            ext,
            Extension::TransportSequenceNumber | Extension::AbsoluteSendTime
        ) {
            exts.set(id, ext.clone());
        }
    }
    exts
}

/// `codecs` without the `transport-cc` and `goog-remb` feedback the stack
/// announces for every format by default (see [`extensions`]).
fn without_bandwidth_feedback(codecs: &CodecConfig) -> CodecConfig {
    let params = codecs
        .params()
        .iter()
        .cloned()
        .map(|mut p| {
            p.set_fb_transport_cc(false);
            p.set_fb_remb(false);
            p
        })
        .collect();
    CodecConfig::new_from_payload_params(params)
}

fn format_params(c: &Codec) -> FormatParams {
    FormatParams::parse_line(&c.fmtp)
}

/// The instance, configured with exactly the picked formats.
fn configure(offer: &Offer, video: &VideoFormat, creds: IceCreds, now: Instant) -> Rtc {
    let mut cfg = Rtc::builder()
        .set_crypto_provider(crate::base::str0m_crypto::provider())
        .set_local_ice_credentials(creds)
        .clear_codecs()
        .set_extension_map(extensions())
        .set_rtp_mode(true)
        .set_stats_interval(None);
    let codecs = cfg.codec_config();
    let v = &video.format;
    let codec = match video.codec {
        VideoCodec::H264 => Str0mCodec::H264,
        VideoCodec::H265 => Str0mCodec::H265,
    };
    codecs.add_config(
        v.payload_type.into(),
        offer.video_rtx(v.payload_type).map(Into::into),
        codec,
        Frequency::NINETY_KHZ,
        None,
        format_params(v),
    );
    if let Some((a, _)) = &offer.audio {
        // The channel count as offered: RFC 7587 says `opus/48000/2`, but
        // webrtcbin offers `OPUS/48000` unless told otherwise, and the stack
        // matches formats only on an equal count.
        let channels = (a.channels != 0).then(|| u8::try_from(a.channels).unwrap_or(2));
        codecs.add_config(
            a.payload_type.into(),
            None,
            Str0mCodec::Opus,
            Frequency::FORTY_EIGHT_KHZ,
            channels,
            format_params(a),
        );
    }
    *codecs = without_bandwidth_feedback(codecs);
    cfg.build(now)
}

/// Whether the stack can take this `a=candidate` line: viewers' mDNS names
/// (`<uuid>.local`, Chromium hides host addresses behind them) are never
/// resolved here, and ICE connects without them: the viewer is the controlling
/// agent and knows our candidates from the answer, so its checks reach us and
/// the stack learns its address as a peer-reflexive candidate.
fn usable_candidate(line: &str) -> bool {
    Candidate::from_sdp_string(line.trim().trim_start_matches("a=")).is_ok()
}

/// The offer without the candidate lines the stack cannot parse (see
/// [`usable_candidate`]).
fn without_unusable_candidates(sdp: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let text = line.trim_end();
        if text.starts_with("a=candidate:") && !usable_candidate(text) {
            tracing::debug!(candidate = %text, "ignoring an offered candidate (mDNS name or unknown form)");
            continue;
        }
        out.push_str(line);
    }
    out
}

/// Builds the instance for `offer` sending `video` with our ICE credentials
/// `creds`, adds `candidates` (our host candidates, as announced) and answers.
pub(crate) fn answer(
    offer: &Offer,
    video: &VideoFormat,
    creds: IceCreds,
    candidates: &[SocketAddr],
    now: Instant,
) -> Result<Answered, WhepError> {
    let mut rtc = configure(offer, video, creds, now);
    for &addr in candidates {
        match Candidate::host(addr, "udp") {
            Ok(c) => {
                rtc.add_local_candidate(c);
            }
            Err(e) => tracing::debug!(%addr, err = %e, "no host candidate for this address"),
        }
    }
    let sdp = without_unusable_candidates(&offer.sdp);
    let parsed = SdpOffer::from_sdp_string(&sdp).map_err(|e| WhepError::BadOffer {
        reason: e.to_string(),
    })?;
    let answer = rtc
        .sdp_api()
        .accept_offer(parsed)
        .map_err(|e| WhepError::BadOffer {
            reason: e.to_string(),
        })?;
    Ok(Answered {
        rtc,
        sdp: with_formats_on_rejected(&answer.to_sdp_string(), &sdp),
    })
}

/// `answer` with a format on each rejected media section. The stack writes a
/// section it rejects (port 0, e.g. audio in a codec we do not send) without a
/// format, which SDP does not allow (RFC 4566 §5.14; RFC 3264 §6: the formats of
/// a rejected stream are ignored, but one must be there) and strict parsers
/// refuse; it gets the offered section's first format, as browsers answer.
fn with_formats_on_rejected(answer: &str, offer: &str) -> String {
    let offered: Vec<&str> = offer
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("m="))
        .collect();
    let mut section = 0;
    let mut out = String::with_capacity(answer.len() + 16);
    for line in answer.split_inclusive('\n') {
        if let Some(m) = line.trim_end().strip_prefix("m=") {
            let fields: Vec<&str> = m.split_whitespace().collect();
            let format = offered
                .get(section)
                .and_then(|o| o.split_whitespace().nth(3));
            section += 1;
            if let (3, Some(format)) = (fields.len(), format) {
                out.push_str(&format!("m={} {format}\r\n", fields.join(" ")));
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webrtc::sdp::parse_offer;

    /// A browser's offer (Chrome's shape, trimmed): Opus sendrecv, H.264 recvonly
    /// in two profiles with their RTX formats, and VP8.
    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0 1\r\na=msid-semantic: WMS\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\na=ice-options:trickle\r\n\
a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99\r\n\
a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=msid:- mic\r\na=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=ssrc:11 cname:x\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 112 113\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\na=ice-options:trickle\r\n\
a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99\r\n\
a=setup:actpass\r\na=mid:1\r\na=recvonly\r\na=rtcp-mux\r\na=rtcp-rsize\r\n\
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\n\
a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
a=rtpmap:102 H264/90000\r\na=rtcp-fb:102 nack\r\na=rtcp-fb:102 nack pli\r\n\
a=rtcp-fb:102 transport-cc\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
a=rtpmap:103 rtx/90000\r\na=fmtp:103 apt=102\r\n\
a=rtpmap:112 H264/90000\r\na=rtcp-fb:112 nack\r\na=rtcp-fb:112 nack pli\r\n\
a=fmtp:112 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f\r\n\
a=rtpmap:113 rtx/90000\r\na=fmtp:113 apt=112\r\n";

    #[test]
    fn the_answer_has_the_picked_format_its_rtx_opus_and_our_candidates() {
        let offer = parse_offer(OFFER).unwrap();
        let video = offer.pick_video(VideoCodec::H264, Some("640028")).unwrap();
        assert_eq!(video.format.payload_type, 112, "the stream's profile");
        let creds = IceCreds::new();
        let ufrag = creds.ufrag.clone();
        let cand: SocketAddr = "192.168.1.5:40001".parse().unwrap();
        let a = answer(&offer, &video, creds, &[cand], Instant::now()).unwrap();
        let sdp = a.sdp;
        let video_line = sdp.lines().find(|l| l.starts_with("m=video")).unwrap();
        assert_eq!(video_line, "m=video 9 UDP/TLS/RTP/SAVPF 112 113", "{sdp}");
        assert!(sdp.contains("a=rtpmap:113 rtx/90000"), "{sdp}");
        assert!(sdp.contains("a=fmtp:113 apt=112"), "{sdp}");
        assert!(sdp.contains("a=rtpmap:111 opus/48000/2"), "{sdp}");
        assert!(sdp.contains("a=sendrecv"), "the viewer's mic: {sdp}");
        assert!(sdp.contains("a=sendonly"), "video to the viewer: {sdp}");
        assert!(sdp.contains(&format!("a=ice-ufrag:{ufrag}")), "{sdp}");
        assert!(sdp.contains("192.168.1.5 40001 typ host"), "{sdp}");
        assert!(!sdp.contains("VP8"), "{sdp}");
    }

    #[test]
    fn the_answer_keeps_mid_and_declines_bandwidth_feedback() {
        let offer = parse_offer(OFFER).unwrap();
        let video = offer.pick_video(VideoCodec::H264, Some("42e01f")).unwrap();
        assert_eq!(video.format.payload_type, 102);
        let a = answer(&offer, &video, IceCreds::new(), &[], Instant::now()).unwrap();
        let sdp = a.sdp;
        assert!(
            sdp.contains("a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid"),
            "BUNDLE needs the mid: {sdp}"
        );
        assert!(!sdp.contains("transport-wide-cc"), "{sdp}");
        assert!(!sdp.contains("transport-cc"), "{sdp}");
        assert!(!sdp.contains("abs-send-time"), "{sdp}");
        assert!(!sdp.contains("goog-remb"), "{sdp}");
        assert!(sdp.contains("a=rtcp-fb:102 nack pli"), "{sdp}");
    }

    #[test]
    fn a_rejected_section_keeps_a_format() {
        // Audio only in G.722: we answer video and reject audio, with a format.
        let offer = OFFER
            .replace(
                "m=audio 9 UDP/TLS/RTP/SAVPF 111",
                "m=audio 9 UDP/TLS/RTP/SAVPF 9",
            )
            .replace("a=rtpmap:111 opus/48000/2", "a=rtpmap:9 G722/8000")
            .replace("a=fmtp:111 minptime=10;useinbandfec=1\r\n", "");
        let offer = parse_offer(&offer).unwrap();
        assert!(offer.audio.is_none());
        let video = offer.pick_video(VideoCodec::H264, Some("42e01f")).unwrap();
        let a = answer(&offer, &video, IceCreds::new(), &[], Instant::now()).unwrap();
        let audio = a.sdp.lines().find(|l| l.starts_with("m=audio")).unwrap();
        assert_eq!(audio, "m=audio 0 UDP/TLS/RTP/SAVPF 9", "{}", a.sdp);
        let video = a.sdp.lines().find(|l| l.starts_with("m=video")).unwrap();
        assert_eq!(video, "m=video 9 UDP/TLS/RTP/SAVPF 102 103", "{}", a.sdp);
    }

    #[test]
    fn opus_without_a_channel_count_is_answered() {
        // webrtcbin's offer from `encoding-name=OPUS` caps, with max-bundle: the
        // audio section is `bundle-only` with port 0.
        let offer = OFFER
            .replace("m=audio 9 ", "m=audio 0 ")
            .replace("a=mid:0\r\n", "a=mid:0\r\na=bundle-only\r\n")
            .replace("a=rtpmap:111 opus/48000/2", "a=rtpmap:111 OPUS/48000");
        let offer = parse_offer(&offer).unwrap();
        let video = offer.pick_video(VideoCodec::H264, Some("42e01f")).unwrap();
        let a = answer(&offer, &video, IceCreds::new(), &[], Instant::now()).unwrap();
        let audio = a.sdp.lines().find(|l| l.starts_with("m=audio")).unwrap();
        assert_eq!(audio, "m=audio 9 UDP/TLS/RTP/SAVPF 111", "{}", a.sdp);
        assert!(
            a.sdp.to_lowercase().contains("a=rtpmap:111 opus/48000"),
            "{}",
            a.sdp
        );
    }

    #[test]
    fn mdns_candidates_are_dropped_and_ip_ones_kept() {
        let sdp = "a=candidate:1 1 udp 2122260223 3f1c2a-uuid.local 50000 typ host\r\n\
                   a=candidate:2 1 udp 2122260223 192.168.1.7 50001 typ host\r\n";
        let out = without_unusable_candidates(sdp);
        assert!(!out.contains(".local"));
        assert!(out.contains("192.168.1.7 50001"));
    }
}
