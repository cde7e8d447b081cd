//! Time to first frame: cold rounds (no Ring session yet) and warm rounds (a
//! session running) before a scenario's load phase.

use std::time::Duration;

use super::fleet::{Target, Viewer, is_whep_unavailable};
use super::report::TtffResult;
use super::stats::{TtffMs, ms, r3};
use super::viewer::{ViewerKind, Window};

/// Cold (no Ring session yet) and warm (session running) time to the first key
/// frame, `rounds` times over `cameras` in turn, each viewer kind in turn
/// (WebRTC only when `webrtc` and the daemon has WHEP); `late_after` as in the
/// load phase.
pub(super) async fn rounds(
    t: &Target,
    cameras: &[String],
    rounds: usize,
    webrtc: bool,
    late_after: Duration,
    notes: &mut Vec<String>,
) -> anyhow::Result<TtffResult> {
    let window = Window::default(); // stays closed: no latency accounting here
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let cam = &cameras[round % cameras.len()];
        t.wait_inactive(cam, Duration::from_secs(30)).await?;
        let kinds = kinds_available(t, webrtc);
        let cold_kind = kinds[round % kinds.len()];
        let mut first = Viewer::start(t, cold_kind, cam, &window, late_after);
        match first.first_keyframe(Duration::from_secs(30)).await {
            Ok(d) => cold.push((cold_kind, ms(d))),
            Err(e) if is_whep_unavailable(&e) => {
                first.stop().await;
                continue; // retried with RTSP next round
            }
            Err(e) => {
                notes.push(format!(
                    "cold round {round} ({}): {e:#}",
                    cold_kind.as_str()
                ));
                first.stop().await;
                continue;
            }
        }
        let mut held = vec![first];
        for kind in kinds_available(t, webrtc) {
            let mut v = Viewer::start(t, kind, cam, &window, late_after);
            match v.first_keyframe(Duration::from_secs(30)).await {
                Ok(d) => warm.push((kind, ms(d))),
                Err(e) if is_whep_unavailable(&e) => {}
                Err(e) => notes.push(format!("warm round {round} ({}): {e:#}", kind.as_str())),
            }
            held.push(v);
        }
        for v in held {
            v.stop().await;
        }
    }
    let pick = |v: &[(ViewerKind, f64)], k: Option<ViewerKind>| {
        TtffMs::from_ms(
            v.iter()
                .filter(|(kind, _)| k.is_none_or(|k| k == *kind))
                .map(|(_, x)| r3(*x))
                .collect(),
        )
    };
    Ok(TtffResult {
        cold: pick(&cold, None),
        cold_rtsp: pick(&cold, Some(ViewerKind::Rtsp)),
        cold_webrtc: pick(&cold, Some(ViewerKind::Webrtc)),
        warm: pick(&warm, None),
        warm_rtsp: pick(&warm, Some(ViewerKind::Rtsp)),
        warm_webrtc: pick(&warm, Some(ViewerKind::Webrtc)),
    })
}

fn kinds_available(t: &Target, webrtc: bool) -> Vec<ViewerKind> {
    if webrtc && t.whep_available() {
        vec![ViewerKind::Rtsp, ViewerKind::Webrtc]
    } else {
        vec![ViewerKind::Rtsp]
    }
}
