//! A WebRTC viewer over standard WHEP (draft-ietf-wish-whep): a webrtc-rs peer
//! with receive-only video and audio, the offer POSTed with every candidate
//! (non-trickle) to `/api/webrtc/<camera>/whep`, `201 Created` + answer SDP,
//! `DELETE <Location>` when done. The offer has webrtc-rs's default codecs, H.264
//! and H.265 among them, so the daemon answers the camera's own codec. Received
//! video is depacketized with the daemon's own RFC 6184 / RFC 7798 depacketizer
//! and each access unit goes to the viewer's [`ViewerLog`].

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use webrtc::api::media_engine::MediaEngine;
use webrtc::api::setting_engine::SettingEngine;
use webrtc::ice::network_type::NetworkType;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtp_transceiver::RTCRtpTransceiverInit;
use webrtc::rtp_transceiver::rtp_codec::RTPCodecType;
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
use webrtc::track::track_remote::TrackRemote;

use super::viewer::SharedLog;
use crate::media::{VideoCodec, VideoDepacketizer};
use crate::sim::live::stamp::{find_stamp_annex_b, realtime_ns};

/// Why a WHEP viewer could not start.
#[derive(Debug, thiserror::Error)]
pub enum WhepStartError {
    /// The daemon has no WHEP endpoint (404).
    #[error("WHEP unavailable: the daemon answered 404 to the WHEP offer")]
    Unavailable,
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// `OPTIONS /api/webrtc/<camera>/whep`: false when the endpoint is missing (404).
pub async fn probe(http: &reqwest::Client, base: &str, camera: &str) -> anyhow::Result<bool> {
    let r = http
        .request(reqwest::Method::OPTIONS, whep_url(base, camera))
        .send()
        .await
        .context("probing the WHEP endpoint")?;
    Ok(r.status() != reqwest::StatusCode::NOT_FOUND)
}

fn whep_url(base: &str, camera: &str) -> String {
    format!("{base}/api/webrtc/{camera}/whep")
}

/// Runs one WHEP viewer of `camera` until `cancel`. `base` is
/// `http://host:port`. Errors after the start land in `log`.
pub async fn run_viewer(
    http: reqwest::Client,
    base: String,
    camera: String,
    log: SharedLog,
    cancel: CancellationToken,
) -> Result<(), WhepStartError> {
    let pc = new_peer().await?;
    let (err_tx, mut err_rx) = mpsc::unbounded_channel::<anyhow::Error>();
    {
        let (log, cancel, err_tx) = (log.clone(), cancel.clone(), err_tx.clone());
        let pc_weak = Arc::downgrade(&pc);
        pc.on_track(Box::new(move |track, _, _| {
            let (log, cancel, err_tx) = (log.clone(), cancel.clone(), err_tx.clone());
            let pc = pc_weak.clone();
            tokio::spawn(async move {
                if let Err(e) = read_track(track, pc, log, cancel).await {
                    let _ = err_tx.send(e);
                }
            });
            Box::pin(async {})
        }));
    }
    let location = match negotiate(&http, &base, &camera, &pc).await {
        Ok(l) => l,
        Err(e) => {
            let _ = pc.close().await;
            return Err(e);
        }
    };
    tokio::select! {
        _ = cancel.cancelled() => {}
        Some(e) = err_rx.recv() => {
            if let Ok(mut l) = log.lock() {
                l.on_error(&e);
            }
        }
    }
    if let Some(loc) = location {
        let url = if loc.starts_with("http") {
            loc
        } else {
            format!("{base}{loc}")
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), http.delete(url).send()).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), pc.close()).await;
    Ok(())
}

async fn new_peer() -> anyhow::Result<Arc<RTCPeerConnection>> {
    let mut m = MediaEngine::default();
    m.register_default_codecs()?;
    let mut s = SettingEngine::default();
    s.set_include_loopback_candidate(true);
    s.set_network_types(vec![NetworkType::Udp4]);
    let pc = crate::base::rtc::peer_connection(m, s, None).await?;
    for kind in [RTPCodecType::Video, RTPCodecType::Audio] {
        pc.add_transceiver_from_kind(
            kind,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                send_encodings: vec![],
            }),
        )
        .await?;
    }
    Ok(pc)
}

/// Offer → POST → answer. Returns the session's `Location`.
async fn negotiate(
    http: &reqwest::Client,
    base: &str,
    camera: &str,
    pc: &RTCPeerConnection,
) -> Result<Option<String>, WhepStartError> {
    let offer = pc.create_offer(None).await.context("creating the offer")?;
    let mut gathered = pc.gathering_complete_promise().await;
    pc.set_local_description(offer)
        .await
        .context("setting the offer")?;
    let _ = tokio::time::timeout(Duration::from_secs(5), gathered.recv()).await;
    let sdp = pc
        .local_description()
        .await
        .context("no local description")?
        .sdp;
    let r = http
        .post(whep_url(base, camera))
        .header(reqwest::header::CONTENT_TYPE, "application/sdp")
        .body(sdp)
        .send()
        .await
        .context("POSTing the WHEP offer")?;
    let status = r.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Err(WhepStartError::Unavailable);
    }
    let location = r
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = r.text().await.context("reading the WHEP answer")?;
    if status != reqwest::StatusCode::CREATED {
        let e = anyhow::anyhow!("WHEP offer answered {status}: {}", body.trim());
        return Err(e.into());
    }
    let answer = RTCSessionDescription::answer(body).context("parsing the answer")?;
    pc.set_remote_description(answer)
        .await
        .context("applying the answer")?;
    Ok(location)
}

async fn read_track(
    track: Arc<TrackRemote>,
    pc: std::sync::Weak<RTCPeerConnection>,
    log: SharedLog,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mime = track.codec().capability.mime_type;
    let codec = match VideoCodec::from_mime_type(&mime) {
        _ if track.kind() != RTPCodecType::Video => None,
        Some(c) => Some(c),
        None => bail!("the daemon sent {mime}, neither H.264 nor H.265"),
    };
    if let Some(c) = codec
        && let Ok(mut l) = log.lock()
    {
        l.codec = Some(c.as_str().to_owned());
    }
    let mut depack = codec.map(VideoDepacketizer::new);
    loop {
        let (pkt, _) = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            r = track.read_rtp() => r.context("reading RTP")?,
        };
        let Some(depack) = depack.as_mut() else {
            continue; // audio: received and dropped, like a muted player
        };
        let h = &pkt.header;
        depack.push(h.sequence_number, h.timestamp, h.marker, &pkt.payload);
        while let Some(au) = depack.pull() {
            let now = realtime_ns();
            let stamp = find_stamp_annex_b(&au.data);
            if let Ok(mut l) = log.lock() {
                l.on_frame(au.keyframe, au.data.len(), stamp, now);
            }
        }
        if depack.take_pli_request()
            && let Some(pc) = pc.upgrade()
        {
            let pli = PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc: track.ssrc(),
            };
            let _ = pc.write_rtcp(&[Box::new(pli)]).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::State;
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    use axum::routing::post;

    use super::*;
    use crate::bench::viewer::{ViewerKind, ViewerLog, Window};
    use crate::sim::live::{LiveSimOptions, answer_as_camera};

    type Peers = Arc<Mutex<Vec<crate::sim::live::CameraPeer>>>;

    /// A standard WHEP endpoint whose "camera" is the simulator's peer.
    async fn whep_server() -> (String, Peers) {
        async fn create(State(peers): State<Peers>, offer: String) -> axum::response::Response {
            let opts = LiveSimOptions {
                width: 320,
                height: 240,
                fps: 10,
                gop_secs: 1,
                stamp_frames: true,
                ..Default::default()
            };
            match answer_as_camera(&opts, offer).await {
                Ok((p, sdp)) => {
                    peers.lock().unwrap().push(p);
                    let h = [
                        (header::CONTENT_TYPE, "application/sdp"),
                        (header::LOCATION, "/api/webrtc/cam/whep/s1"),
                    ];
                    (StatusCode::CREATED, h, sdp).into_response()
                }
                Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
            }
        }
        let peers = Peers::default();
        let app = Router::new()
            .route(
                "/api/webrtc/{camera}/whep",
                post(create).options(|| async { StatusCode::NO_CONTENT }),
            )
            .route(
                "/api/webrtc/{camera}/whep/{session}",
                axum::routing::delete(|| async { StatusCode::OK }),
            )
            .with_state(peers.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), peers)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn whep_viewer_receives_stamped_h264() {
        let (base, peers) = whep_server().await;
        let http = reqwest::Client::new();
        assert!(probe(&http, &base, "cam").await.unwrap());
        let window = Window::default();
        window.set(true);
        let log = ViewerLog::new(
            ViewerKind::Webrtc,
            "cam",
            window,
            Duration::from_millis(100),
        );
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run_viewer(
            http,
            base,
            "cam".into(),
            log.clone(),
            cancel.clone(),
        ));
        let end = tokio::time::Instant::now() + Duration::from_secs(20);
        while log.lock().unwrap().stamped < 10 {
            assert!(
                tokio::time::Instant::now() < end,
                "{:?}",
                log.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        cancel.cancel();
        task.await.unwrap().unwrap();
        {
            let l = log.lock().unwrap();
            assert!(l.first_keyframe.is_some() && l.error.is_none(), "{l:?}");
            assert_eq!(l.stamped, l.frames, "every frame carries the stamp");
            assert!(l.latencies_us.iter().all(|&us| us < 5_000_000));
        }
        let all: Vec<_> = peers.lock().unwrap().drain(..).collect();
        for p in all {
            p.close().await;
        }
    }

    #[tokio::test]
    async fn missing_endpoint_is_whep_unavailable() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, Router::new()).await });
        let http = reqwest::Client::new();
        assert!(!probe(&http, &base, "cam").await.unwrap());
        let log = ViewerLog::new(
            ViewerKind::Webrtc,
            "cam",
            Window::default(),
            Duration::from_millis(100),
        );
        let r = run_viewer(http, base, "cam".into(), log, CancellationToken::new()).await;
        assert!(matches!(r, Err(WhepStartError::Unavailable)), "{r:?}");
    }
}
