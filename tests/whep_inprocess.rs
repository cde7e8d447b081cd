//! `WhepServer` in process (no HTTP, no Ring): a scripted live source whose Ring
//! side negotiated PCMU talkback, so the viewer's Opus must be transcoded; a PLI
//! from the viewer must reach the source as a key-frame request; shutdown must
//! release the lease. And the voice floor on an Opus source: silence takes
//! nothing, a tone takes the floor with the packets just before it (pre-roll),
//! silence gives it back.

mod whep_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use ring_bridge::base::CameraId;
use ring_bridge::media::testutil::{FAKE_PPS, FAKE_SPS};
use ring_bridge::media::{
    Frame, Hub, HubOptions, LiveOpener, LiveSource, MediaKind, SourceError, TalkbackCodec,
    TalkbackPacket, TalkbackSender,
};
use ring_bridge::webrtc::{Claim, PREROLL, WhepOptions, WhepServer};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::track::track_local::track_local_static_sample::TrackLocalStaticSample;
use whep_support::{make_offer, new_peer, opus_sine};

/// The camera (hub key) every session views.
const CAM: CameraId = CameraId::new(1);

/// 10 fps, a key frame every 20 frames, no audio frames; talkback in PCMU, or in
/// Opus when `opus` (a session whose Ring side negotiated Opus audio).
struct TestOpener {
    talk_rx: Mutex<Option<mpsc::Receiver<TalkbackPacket>>>,
    talk_tx: TalkbackSender,
    keyframe_requests: Arc<AtomicUsize>,
    opus: bool,
}

struct TestSource {
    n: u64,
    start: tokio::time::Instant,
    talk: TalkbackSender,
    keyframe_requests: Arc<AtomicUsize>,
    opus: bool,
}

#[async_trait]
impl LiveOpener for TestOpener {
    async fn open(
        &self,
        _camera: CameraId,
        _cancel: CancellationToken,
    ) -> Result<Box<dyn LiveSource>, SourceError> {
        Ok(Box::new(TestSource {
            n: 0,
            start: tokio::time::Instant::now(),
            talk: self.talk_tx.clone(),
            keyframe_requests: Arc::clone(&self.keyframe_requests),
            opus: self.opus,
        }))
    }
}

#[async_trait]
impl LiveSource for TestSource {
    async fn next(&mut self) -> Option<Result<Frame, SourceError>> {
        tokio::time::sleep_until(self.start + Duration::from_millis(100) * self.n as u32).await;
        let key = self.n.is_multiple_of(20);
        let mut b = BytesMut::new();
        if key {
            for nal in [FAKE_SPS, FAKE_PPS] {
                b.put_slice(&[0, 0, 0, 1]);
                b.put_slice(nal);
            }
        }
        b.put_slice(&[0, 0, 0, 1, if key { 0x65 } else { 0x41 }, 0x88, 0x84]);
        b.put_u64(self.n);
        let f = Frame::new(MediaKind::Video, b.freeze(), key, self.n * 9000, 9000);
        self.n += 1;
        Some(Ok(f))
    }

    fn request_keyframe(&self) {
        self.keyframe_requests.fetch_add(1, Ordering::SeqCst);
    }

    async fn close(self: Box<Self>) {}

    fn session_age(&self) -> Duration {
        self.start.elapsed()
    }

    fn session_cap(&self) -> Option<Duration> {
        None
    }

    fn talkback(&self) -> Option<TalkbackSender> {
        Some(self.talk.clone())
    }

    fn has_audio(&self) -> bool {
        self.opus
    }
}

/// A hub on a [`TestOpener`] and a WHEP server on loopback ICE ports `ports`.
fn rig(
    opus: bool,
    ports: (u16, u16),
) -> (
    Arc<TestOpener>,
    Arc<AtomicUsize>,
    Hub,
    WhepServer,
    CancellationToken,
) {
    let (talk_tx, talk_rx) = TalkbackSender::channel(256);
    let requests = Arc::new(AtomicUsize::new(0));
    let opener = Arc::new(TestOpener {
        talk_rx: Mutex::new(Some(talk_rx)),
        talk_tx,
        keyframe_requests: Arc::clone(&requests),
        opus,
    });
    let cancel = CancellationToken::new();
    let hub = Hub::new(
        opener.clone(),
        HubOptions {
            linger: Duration::from_millis(200),
            keyframe_request_interval: Duration::from_millis(100),
            ..HubOptions::default()
        },
        cancel.child_token(),
    );
    let opts = WhepOptions {
        listen_ip: "127.0.0.1".parse().unwrap(),
        include_loopback: true,
        udp_ports: ports,
        ..WhepOptions::default()
    };
    let whep = WhepServer::new(opts, hub.clone(), cancel.child_token());
    (opener, requests, hub, whep, cancel)
}

#[tokio::test(flavor = "multi_thread")]
async fn pcmu_talkback_pli_and_shutdown() {
    let (opener, requests, hub, whep, _cancel) = rig(false, (41_000, 41_200));

    let (pc, talk) = new_peer().await;
    let (ssrc_tx, mut ssrc_rx) = mpsc::unbounded_channel();
    pc.on_track(Box::new(move |track, _, _| {
        let _ = ssrc_tx.send((track.kind(), track.ssrc()));
        tokio::spawn(async move { while track.read_rtp().await.is_ok() {} });
        Box::pin(async {})
    }));
    let offer = make_offer(&pc).await;
    let answer = whep.create_session(CAM, &offer).await.unwrap();
    assert_eq!(answer.session_id.len(), 32);
    pc.set_remote_description(RTCSessionDescription::answer(answer.sdp).unwrap())
        .await
        .unwrap();
    assert_eq!(hub.stream(CAM).viewers(), 1, "the session holds a lease");
    let (kind, video_ssrc) = tokio::time::timeout(Duration::from_secs(20), ssrc_rx.recv())
        .await
        .expect("video track")
        .unwrap();
    assert_eq!(kind.to_string(), "video");

    // A PLI from the viewer reaches the source once its cached key frame is stale.
    let before = requests.load(Ordering::SeqCst);
    let asked = whep_common_wait(Duration::from_secs(10), || {
        let pc = Arc::clone(&pc);
        let requests = Arc::clone(&requests);
        async move {
            let pli = PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc: video_ssrc,
            };
            let _ = pc.write_rtcp(&[Box::new(pli)]).await;
            requests.load(Ordering::SeqCst) > before
        }
    })
    .await;
    assert!(asked, "PLI did not become a key-frame request");

    // Talkback: this Ring session wants PCMU, so the Opus sine is transcoded.
    let sessions = whep.sessions(Some(CAM));
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].state, "connected");
    assert!(whep.set_talking(CAM, &sessions[0].id, true).unwrap());
    assert!(whep.talk_state(CAM).talking);
    let sine = tokio::task::block_in_place(|| opus_sine(Duration::from_millis(600)));
    let mut rx = opener.talk_rx.lock().unwrap().take().unwrap();
    for p in &sine {
        talk.write_sample(&webrtc::media::Sample {
            data: p.clone(),
            duration: Duration::from_millis(20),
            ..Default::default()
        })
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut got = Vec::new();
    while got.len() < 10 {
        let p = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("PCMU talkback in time")
            .unwrap();
        got.push(p);
    }
    for p in &got {
        assert_eq!(p.codec, TalkbackCodec::Pcmu);
        assert_eq!((p.data.len(), p.samples), (160, 160));
    }
    let loud: usize = got
        .iter()
        .flat_map(|p| p.data.iter())
        .filter(|&&b| b & 0x70 != 0x70)
        .count();
    assert!(loud > 300, "the sine is not silence: {loud}");

    // Shutdown closes the session and drops its lease.
    whep.shutdown().await;
    assert!(whep.sessions(None).is_empty());
    assert_eq!(hub.stream(CAM).viewers(), 0);
    assert!(
        whep.create_session(CAM, &offer).await.is_err(),
        "no new sessions after shutdown"
    );
    let _ = pc.close().await;
    hub.shutdown().await;
}

/// A 20 ms Opus frame of silence (CELT, TOC 0xF8).
const OPUS_SILENCE: [u8; 3] = [0xF8, 0xFF, 0xFE];

/// Sends `packets` on the viewer's microphone, paced at 20 ms.
async fn send_mic(talk: &TrackLocalStaticSample, packets: &[Bytes]) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for p in packets {
        tick.tick().await;
        let s = webrtc::media::Sample {
            data: p.clone(),
            duration: Duration::from_millis(20),
            ..Default::default()
        };
        talk.write_sample(&s).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn voice_takes_the_floor_with_its_preroll_and_silence_gives_it_back() {
    let (opener, _, hub, whep, _cancel) = rig(true, (41_300, 41_500));
    let (pc, talk) = new_peer().await;
    let (state_tx, mut state) = tokio::sync::watch::channel(false);
    pc.on_peer_connection_state_change(Box::new(move |s| {
        let _ = state_tx.send(s == RTCPeerConnectionState::Connected);
        Box::pin(async {})
    }));
    let offer = make_offer(&pc).await;
    let answer = whep.create_session(CAM, &offer).await.unwrap();
    pc.set_remote_description(RTCSessionDescription::answer(answer.sdp).unwrap())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), state.wait_for(|c| *c))
        .await
        .expect("connected in time")
        .unwrap();
    let mut rx = opener.talk_rx.lock().unwrap().take().unwrap();

    // Silence: no floor, nothing reaches the camera.
    let silence = vec![Bytes::from_static(&OPUS_SILENCE); 30];
    send_mic(&talk, &silence).await;
    assert!(!whep.talk_state(CAM).talking);
    assert!(rx.try_recv().is_err(), "silence does not talk");

    // A tone: the voice takes the floor; the packets just before it come first.
    let sine = tokio::task::block_in_place(|| opus_sine(Duration::from_millis(1000)));
    send_mic(&talk, &sine).await;
    let state = whep.talk_state(CAM);
    assert_eq!(
        (state.session.as_deref(), state.by),
        (Some(answer.session_id.as_str()), Some(Claim::Voice))
    );
    let mut got = Vec::new();
    while got.len() < 30 {
        let p = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("talkback in time")
            .unwrap();
        assert_eq!(p.codec, TalkbackCodec::Opus);
        got.push(p.data);
    }
    assert_eq!(got[0], Bytes::from_static(&OPUS_SILENCE), "pre-roll first");
    let onset = got
        .iter()
        .position(|p| *p == sine[0])
        .expect("the tone's first packet");
    assert!(
        onset < PREROLL,
        "the tone's onset is in the pre-roll: {onset}"
    );
    assert_eq!(
        got[onset..],
        sine[..got.len() - onset],
        "in order, none lost"
    );

    // Silence again: the floor goes back after the hang time (1 s).
    let quiet = vec![Bytes::from_static(&OPUS_SILENCE); 150];
    let sending = send_mic(&talk, &quiet);
    let released = whep_common_wait(Duration::from_secs(3), || async {
        !whep.talk_state(CAM).talking
    });
    let ((), released) = tokio::join!(sending, released);
    assert!(released, "floor kept after silence");

    whep.shutdown().await;
    let _ = pc.close().await;
    hub.shutdown().await;
}

/// Polls `f` every 50 ms until it returns true, at most `timeout`.
async fn whep_common_wait<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < end {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
