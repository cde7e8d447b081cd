//! The simulated camera's WebRTC peer: answers the client's offer, sends the
//! cached clip (H.264 or H.265, + Opus) paced in real time, answers PLI with the next
//! key frame, and measures talkback received on the audio track.
//!
//! PLI handling: the pacer jumps to the next GOP start of the clip at the next
//! frame tick instead of finishing the current GOP, so a key frame goes out
//! within one frame interval. RTP timestamps keep running (webrtc-rs advances
//! them by each sample's duration), across PLI jumps and clip loops alike.
//!
//! With `LiveSimOptions::stamp_frames` every access unit gets a benchmark stamp
//! (SEI with a frame counter and the send time, see `stamp.rs`) just before
//! it is handed to the track.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;
use webrtc::api::media_engine::{MIME_TYPE_H264, MIME_TYPE_HEVC, MIME_TYPE_OPUS, MediaEngine};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::ice::network_type::NetworkType;
use webrtc::ice_transport::ice_candidate::RTCIceCandidateInit;
use webrtc::media::Sample;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtp_transceiver::RTCPFeedback;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpCodecParameters, RTPCodecType,
};
use webrtc::rtp_transceiver::rtp_sender::RTCRtpSender;
use webrtc::track::track_local::TrackLocal;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;

use super::clip::{AUDIO_FRAME, Clip};
use super::stamp;
use super::talkback::{TalkMap, TalkMeter};

/// The H.264 format the simulated camera answers with (same as Ring's offer).
const H264_FMTP: &str = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640029";
/// Payload types the simulated camera registers (the answer uses the offer's).
const PT_H264: u8 = 102;
const PT_H265: u8 = 104;

/// What the peer tells its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerEvent {
    Connected,
    Failed,
}

/// One session's peer.
pub(crate) struct SimPeer {
    pub pc: Arc<RTCPeerConnection>,
    video: Arc<TrackLocalStaticSample>,
    audio: Arc<TrackLocalStaticSample>,
    clip: Arc<Clip>,
    pli: Arc<AtomicBool>,
    /// The camera speaker: on after `camera_options {stealth_mode:false}`.
    speaker: Arc<AtomicBool>,
    cancel: CancellationToken,
    tasks: TaskTracker,
    started: AtomicBool,
    /// Put a benchmark stamp (SEI) into every video access unit.
    stamp: bool,
    /// The clip and track are H.265 (else H.264).
    h265: bool,
    /// Opus packets per audio send ([`super::LiveSimOptions::audio_per_send`]).
    audio_per_send: u32,
}

fn capability(mime: &str, clock_rate: u32, channels: u16, fmtp: &str) -> RTCRtpCodecCapability {
    RTCRtpCodecCapability {
        mime_type: mime.to_owned(),
        clock_rate,
        channels,
        sdp_fmtp_line: fmtp.to_owned(),
        rtcp_feedback: vec![],
    }
}

impl SimPeer {
    /// Builds the peer, applies `offer` and returns the answer SDP with all
    /// (host, loopback included) candidates in it. `h265`: the clip is H.265 and is
    /// sent as such (the offer must list H.265). From `opts`: with
    /// `stamp_frames`, every video access unit carries a benchmark stamp; with
    /// `video_loss_every`, video packets are lost ([`super::loss`]).
    #[allow(clippy::too_many_arguments)]
    pub async fn answer(
        offer: String,
        clip: Arc<Clip>,
        h265: bool,
        camera: u64,
        talk: TalkMap,
        events: mpsc::UnboundedSender<PeerEvent>,
        opts: &super::LiveSimOptions,
    ) -> anyhow::Result<(Arc<SimPeer>, String)> {
        let stamp = opts.stamp_frames;
        let mut m = MediaEngine::default();
        m.register_codec(
            RTCRtpCodecParameters {
                capability: capability(MIME_TYPE_OPUS, 48_000, 2, "minptime=10;useinbandfec=1"),
                payload_type: 111,
                ..Default::default()
            },
            RTPCodecType::Audio,
        )?;
        let fir = || {
            vec![RTCPFeedback {
                typ: "ccm".into(),
                parameter: "fir".into(),
            }]
        };
        // Only the codec the camera sends, so the answer names exactly that one.
        let (mut video_cap, pt) = if h265 {
            (capability(MIME_TYPE_HEVC, 90_000, 0, ""), PT_H265)
        } else {
            (capability(MIME_TYPE_H264, 90_000, 0, H264_FMTP), PT_H264)
        };
        video_cap.rtcp_feedback = fir();
        m.register_codec(
            RTCRtpCodecParameters {
                capability: video_cap.clone(),
                payload_type: pt,
                ..Default::default()
            },
            RTPCodecType::Video,
        )?;
        let mut s = SettingEngine::default();
        s.set_include_loopback_candidate(true);
        // IPv4 only: link-local IPv6 sockets fail to bind in containers, and
        // the simulator is reached over IPv4 (usually loopback).
        s.set_network_types(vec![NetworkType::Udp4]);
        let loss = opts.video_loss_every.map(|n| {
            Box::new(super::loss::VideoLoss::new(n))
                as Box<dyn webrtc::interceptor::InterceptorBuilder + Send + Sync>
        });
        let pc = crate::base::rtc::peer_connection(m, s, loss).await?;

        let video = Arc::new(TrackLocalStaticSample::new(
            video_cap,
            "video".into(),
            "ring-sim".into(),
        ));
        let audio = Arc::new(TrackLocalStaticSample::new(
            capability(MIME_TYPE_OPUS, 48_000, 2, "minptime=10;useinbandfec=1"),
            "audio".into(),
            "ring-sim".into(),
        ));
        let peer = Arc::new(SimPeer {
            pc: Arc::clone(&pc),
            video: Arc::clone(&video),
            audio: Arc::clone(&audio),
            clip,
            pli: Arc::new(AtomicBool::new(false)),
            speaker: Arc::new(AtomicBool::new(false)),
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
            started: AtomicBool::new(false),
            stamp,
            h265,
            audio_per_send: opts.audio_per_send,
        });
        let audio_sender = pc
            .add_track(audio as Arc<dyn TrackLocal + Send + Sync>)
            .await?;
        let video_sender = pc
            .add_track(video as Arc<dyn TrackLocal + Send + Sync>)
            .await?;
        peer.drain_rtcp(audio_sender, None);
        peer.drain_rtcp(video_sender, Some(Arc::clone(&peer.pli)));

        let (tasks, cancel) = (peer.tasks.clone(), peer.cancel.clone());
        let speaker = Arc::clone(&peer.speaker);
        pc.on_track(Box::new(move |track, _receiver, _transceiver| {
            if track.kind() == RTPCodecType::Audio {
                let (talk, cancel) = (Arc::clone(&talk), cancel.clone());
                let speaker = Arc::clone(&speaker);
                tasks.spawn(async move {
                    let mut meter = TalkMeter::new(camera, talk);
                    loop {
                        tokio::select! {
                            _ = cancel.cancelled() => break,
                            r = track.read_rtp() => match r {
                                Ok((pkt, _)) => {
                                    meter.packet(&pkt.payload, speaker.load(Ordering::Relaxed)).await;
                                }
                                Err(_) => break,
                            },
                        }
                    }
                    meter.stop().await;
                });
            }
            Box::pin(async {})
        }));
        pc.on_peer_connection_state_change(Box::new(move |st| {
            let ev = match st {
                RTCPeerConnectionState::Connected => Some(PeerEvent::Connected),
                RTCPeerConnectionState::Failed => Some(PeerEvent::Failed),
                _ => None,
            };
            if let Some(ev) = ev {
                let _ = events.send(ev);
            }
            Box::pin(async {})
        }));

        pc.set_remote_description(RTCSessionDescription::offer(offer)?)
            .await
            .context("applying the offer")?;
        let answer = pc.create_answer(None).await?;
        let mut gathered = pc.gathering_complete_promise().await;
        pc.set_local_description(answer).await?;
        let _ = tokio::time::timeout(Duration::from_secs(5), gathered.recv()).await;
        let sdp = pc
            .local_description()
            .await
            .context("no local description")?
            .sdp;
        Ok((peer, sdp))
    }

    /// Turns the camera speaker on or off (`camera_options.stealth_mode`).
    pub fn set_speaker(&self, on: bool) {
        self.speaker.store(on, Ordering::Relaxed);
    }

    /// Adds a trickled client candidate.
    pub async fn add_candidate(&self, candidate: String, mline_index: u16) {
        let init = RTCIceCandidateInit {
            candidate,
            sdp_mline_index: Some(mline_index),
            ..Default::default()
        };
        if let Err(e) = self.pc.add_ice_candidate(init).await {
            debug!(err = %e, "ignoring a bad client candidate");
        }
    }

    fn drain_rtcp(&self, sender: Arc<RTCRtpSender>, pli: Option<Arc<AtomicBool>>) {
        let cancel = self.cancel.clone();
        self.tasks.spawn(async move {
            loop {
                let pkts = tokio::select! {
                    _ = cancel.cancelled() => break,
                    r = sender.read_rtcp() => match r {
                        Ok((pkts, _)) => pkts,
                        Err(_) => break,
                    },
                };
                if let Some(flag) = &pli {
                    let key = pkts.iter().any(|p| {
                        let any = p.as_any();
                        any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
                    });
                    if key {
                        debug!("keyframe requested");
                        flag.store(true, Ordering::Relaxed);
                    }
                }
            }
        });
    }

    /// Starts sending the clip (once; call when the peer is connected).
    pub fn start_media(self: &Arc<Self>) {
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let p = Arc::clone(self);
        self.tasks.spawn(async move { p.pace_video().await });
        let p = Arc::clone(self);
        self.tasks.spawn(async move { p.pace_audio().await });
    }

    async fn pace_video(&self) {
        let clip = &self.clip;
        let dur = clip.frame_duration;
        let (mut idx, mut next, mut sent) = (0usize, Instant::now(), 0u64);
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep_until(next) => {}
            }
            if self.pli.swap(false, Ordering::Relaxed) && !clip.video[idx].keyframe {
                idx = clip.next_keyframe(idx);
            }
            let data = if self.stamp {
                let s = stamp::Stamp {
                    counter: sent,
                    sent_ns: stamp::realtime_ns(),
                };
                if self.h265 {
                    stamp::stamp_annex_b_h265(&clip.video[idx].data, s)
                } else {
                    stamp::stamp_annex_b(&clip.video[idx].data, s)
                }
            } else {
                clip.video[idx].data.clone()
            };
            sent += 1;
            let sample = Sample {
                data,
                duration: dur,
                ..Default::default()
            };
            if let Err(e) = self.video.write_sample(&sample).await {
                debug!(err = %e, "video write failed");
            }
            idx = (idx + 1) % clip.video.len();
            next = catch_up(next + dur);
        }
    }

    /// Sends the clip's 20 ms Opus packets on their schedule: one every 20 ms,
    /// or `audio_per_send` of them back to back every `audio_per_send` × 20 ms.
    async fn pace_audio(&self) {
        let clip = &self.clip;
        if self.audio_per_send == 0 || clip.audio.is_empty() {
            return;
        }
        let (mut idx, mut next) = (0usize, Instant::now());
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep_until(next) => {}
            }
            for _ in 0..self.audio_per_send {
                let sample = Sample {
                    data: clip.audio[idx].clone(),
                    duration: AUDIO_FRAME,
                    ..Default::default()
                };
                if let Err(e) = self.audio.write_sample(&sample).await {
                    debug!(err = %e, "audio write failed");
                }
                idx = (idx + 1) % clip.audio.len();
            }
            next = catch_up(next + AUDIO_FRAME * self.audio_per_send);
        }
    }

    /// Stops the media tasks and closes the peer.
    pub async fn close(&self) {
        self.cancel.cancel();
        self.tasks.close();
        if tokio::time::timeout(Duration::from_secs(2), self.pc.close())
            .await
            .is_err()
        {
            debug!("closing the simulated peer timed out");
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.tasks.wait()).await;
    }
}

/// After a stall (overloaded host) resume from now instead of bursting.
fn catch_up(next: Instant) -> Instant {
    let now = Instant::now();
    if now.saturating_duration_since(next) > Duration::from_millis(500) {
        now
    } else {
        next
    }
}
