//! How a simulated camera picks its video codec, modelled on what is known about
//! Ring's HEVC cameras (`docs/design/0009-h265.md`):
//!
//! - [`VideoMode::Legacy`]: `hevc_enabled: false`, always H.264.
//! - [`VideoMode::Hevc`]: HEVC mode. H.265 when the client's offer lists H.265
//!   (wherever it is in the list, as Ring does for browsers); otherwise H.264, which
//!   Ring transcodes on its side and announces with `stream_info {transcoding: true,
//!   transcoding_reason: "codec_mismatch"}`.
//! - [`VideoMode::HevcOnly`]: no server-side transcode (the 2026 4K cameras as
//!   reported): H.265 when offered, otherwise the `live_view` is refused with a
//!   `close` ([`CLOSE_CODEC`]).
//!
//! Only the generated clip can be H.265; cameras backed by a user's MP4 file stream
//! that file's H.264 whatever their mode.

use serde::{Deserialize, Serialize};

/// Close code for "the camera cannot stream any codec the offer lists" (the
/// simulator's own; Ring's code for this case is not documented).
pub const CLOSE_CODEC: u32 = 7;

/// A simulated camera's video behaviour (`POST /_sim/cameras/{id}/video`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoMode {
    /// Legacy mode: H.264 only.
    #[default]
    Legacy,
    /// HEVC mode: H.265 if offered, else H.264 transcoded by "Ring".
    Hevc,
    /// HEVC without transcoding: H.265 if offered, else the call is refused.
    HevcOnly,
}

impl VideoMode {
    /// What `settings.video_settings.hevc_enabled` says for this mode.
    pub fn hevc_enabled(self) -> bool {
        self != VideoMode::Legacy
    }
}

/// The codec a session sends, and whether "Ring" transcoded to get it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Choice {
    /// Send H.265 (else H.264).
    pub h265: bool,
    /// H.264 made from an HEVC camera (announced with `stream_info`).
    pub transcoded: bool,
}

/// Whether an SDP offer lists H.265 (`a=rtpmap:<pt> H265/90000`, any case).
pub(crate) fn offer_has_h265(offer: &str) -> bool {
    offer.lines().any(|l| {
        l.strip_prefix("a=rtpmap:")
            .and_then(|r| r.split_once(' '))
            .is_some_and(|(_, enc)| {
                let enc = enc.trim().to_ascii_lowercase();
                enc.starts_with("h265/") || enc.starts_with("hevc/")
            })
    })
}

/// The codec for `mode` and `offer`, or `None` if the camera cannot serve the offer.
/// `file_backed` cameras stream their MP4's H.264 in every mode.
pub(crate) fn choose(mode: VideoMode, offer: &str, file_backed: bool) -> Option<Choice> {
    let h265_offered = offer_has_h265(offer);
    let plain = Choice {
        h265: false,
        transcoded: false,
    };
    Some(match mode {
        _ if file_backed => plain,
        VideoMode::Legacy => plain,
        VideoMode::Hevc | VideoMode::HevcOnly if h265_offered => Choice {
            h265: true,
            transcoded: false,
        },
        VideoMode::Hevc => Choice {
            h265: false,
            transcoded: true,
        },
        VideoMode::HevcOnly => return None,
    })
}

/// Rewrites one x265 access unit into the form webrtc-rs 0.17's `HevcPayloader`
/// packetizes correctly: it splits only at 4-byte start codes when there are any,
/// drops NAL types it does not know (IDR_N_LP among them) and writes FU headers only
/// for IDR_W_RADL and trailing pictures. So: 4-byte start codes everywhere, x265's
/// informational SEI and AUDs dropped, and IDR_N_LP relabelled IDR_W_RADL (same
/// slice syntax; "may have RADL pictures" holds with none). Keep the clip closed-GOP
/// (no CRA) for the same reason.
pub(crate) fn for_webrtc_payloader(au: &bytes::Bytes) -> bytes::Bytes {
    use crate::media::h265::{
        NAL_AUD, NAL_IDR_N_LP, NAL_IDR_W_RADL, NAL_PREFIX_SEI, NAL_SUFFIX_SEI, nal_type,
    };
    let mut out = bytes::BytesMut::with_capacity(au.len() + 16);
    for nal in crate::media::h264::nal_units(au) {
        let t = nal_type(&nal);
        if matches!(t, NAL_AUD | NAL_PREFIX_SEI | NAL_SUFFIX_SEI) {
            continue;
        }
        out.extend_from_slice(&[0, 0, 0, 1]);
        if t == NAL_IDR_N_LP {
            out.extend_from_slice(&[(nal[0] & 0x81) | (NAL_IDR_W_RADL << 1)]);
            out.extend_from_slice(&nal[1..]);
        } else {
            out.extend_from_slice(&nal);
        }
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    const H264_ONLY: &str = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\n\
        a=rtpmap:102 H264/90000\r\n";
    const BOTH: &str = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102 104\r\n\
        a=rtpmap:102 H264/90000\r\na=rtpmap:104 H265/90000\r\n";

    #[test]
    fn modes_choose_as_ring_is_reported_to() {
        assert!(!offer_has_h265(H264_ONLY));
        assert!(offer_has_h265(BOTH));
        assert!(offer_has_h265("a=rtpmap:98 hevc/90000"));
        let c = |m, o, f| choose(m, o, f).map(|c| (c.h265, c.transcoded));
        assert_eq!(c(VideoMode::Legacy, BOTH, false), Some((false, false)));
        assert_eq!(c(VideoMode::Hevc, BOTH, false), Some((true, false)));
        assert_eq!(c(VideoMode::Hevc, H264_ONLY, false), Some((false, true)));
        assert_eq!(c(VideoMode::HevcOnly, BOTH, false), Some((true, false)));
        assert_eq!(c(VideoMode::HevcOnly, H264_ONLY, false), None);
        assert_eq!(c(VideoMode::HevcOnly, BOTH, true), Some((false, false)));
        assert!(VideoMode::Hevc.hevc_enabled() && !VideoMode::Legacy.hevc_enabled());
    }

    #[test]
    fn x265_units_are_made_payloader_friendly() {
        use crate::media::h265::nal_type;
        // VPS, SPS, PPS (4-byte codes), SEI and IDR_N_LP (3-byte codes).
        let au = bytes::Bytes::from_static(&[
            0, 0, 0, 1, 0x40, 1, 7, 0, 0, 0, 1, 0x42, 1, 7, 0, 0, 0, 1, 0x44, 1, 7, 0, 0, 1, 0x4e,
            1, 5, 0, 0, 1, 0x28, 1, 0xaf, 9,
        ]);
        let out = for_webrtc_payloader(&au);
        let types: Vec<u8> = crate::media::h264::nal_units(&out)
            .map(|n| nal_type(&n))
            .collect();
        assert_eq!(types, [32, 33, 34, 19]);
        assert_eq!(out.windows(4).filter(|w| w == &[0, 0, 0, 1]).count(), 4);
        assert!(out.ends_with(&[0x26, 1, 0xaf, 9]));
    }
}
