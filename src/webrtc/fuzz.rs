//! Property tests of the viewer-SDP parsers (offer, trickle fragment, limits):
//! random and mutated input gives a value or an error, never a panic, and the
//! pathological shapes of the hardening findings stay linear.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::limits::{self, SdpLimits};
use super::sdp::{parse_fragment, parse_offer};
use crate::base::proptest_util::{config, edits, mutate};
use crate::media::VideoCodec;

/// A Chrome-like offer: audio sendrecv (Opus), video recvonly (H.264 mode 1).
const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\n\
a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n\
a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:0 PCMU/8000\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 102\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=recvonly\r\n\
a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtpmap:102 H264/90000\r\na=rtcp-fb:102 nack pli\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n";

const FRAGMENT: &str = "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n\
a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0\r\n\
a=end-of-candidates\r\n";

/// What the server does with an offer: limits first, then the parser.
fn offer_pipeline(text: &str) {
    if limits::check(text, SdpLimits::default()).is_ok()
        && let Ok(o) = parse_offer(text)
    {
        let _ = o.pick_video(VideoCodec::H264, Some("640029"));
        let _ = o.pick_video(
            VideoCodec::H265,
            Some("profile-id=1;tier-flag=0;level-id=93"),
        );
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn offers_never_panic(e in edits()) {
        offer_pipeline(&mutate(OFFER, &e));
    }

    #[test]
    fn random_text_offers_never_panic(s in "v=0\r\n\\PC{0,400}") {
        offer_pipeline(&s);
    }

    #[test]
    fn fragments_never_panic(e in edits()) {
        let text = mutate(FRAGMENT, &e);
        if limits::check(&text, SdpLimits::default()).is_ok() {
            let _ = parse_fragment(&text);
        }
    }

    #[test]
    fn random_fragments_never_panic(s in "(a=[a-z-]{1,12}:[ -~]{0,60}\r\n){0,20}") {
        let _ = parse_fragment(&s);
    }
}

/// Time of the offer parser alone (the limits would refuse this) on the hostile
/// shape with `n` repetitions.
fn hostile_offer_time(n: usize) -> Duration {
    let text = format!(
        "{OFFER}m=video 9 UDP/TLS/RTP/SAVPF{}\r\n{}",
        " 96".repeat(n),
        "a=fmtp:96 x\r\n".repeat(n)
    );
    assert!(limits::check(&text, SdpLimits::default()).is_err());
    let t = Instant::now();
    let _ = parse_offer(&text);
    t.elapsed()
}

#[test]
fn attribute_lines_cost_linear_time() {
    // Before the payload-type table, every attribute line scanned every listed
    // format: 200,000 formats and 60,000 lines took 24 s.
    // The fastest of three runs each, so a descheduled run does not count.
    let best = |n| {
        (0..3)
            .map(|_| hostile_offer_time(n))
            .min()
            .unwrap_or_default()
    };
    let small = best(10_000);
    let large = best(80_000);
    let ratio = large.as_secs_f64() / small.as_secs_f64().max(1e-6);
    assert!(
        ratio < 32.0,
        "8x the lines took {ratio:.1}x the time ({small:?} vs {large:?})"
    );
}

/// Crashers and hostile cases found so far, kept as regression cases.
#[test]
fn regression_cases() {
    for text in [
        "v=0\r\nm=video 9 RTP/AVP 96\r\na=rtpmap:96\r\n",
        "v=0\r\nm=video 9 RTP/AVP 255 128 -1\r\na=rtpmap:255 H264/90000\r\n",
        "v=0\r\na=ice-ufrag:\r\nm=\r\n",
        "v=0\r\nm=video 0 RTP/AVP 96\r\na=fmtp:96 profile-level-id=é€€€\r\n",
    ] {
        offer_pipeline(text);
    }
    assert!(parse_fragment("a=candidate:\u{0}\r\n").is_err());
}
