//! `WhepServer` in process (no HTTP, no Ring): a scripted live source whose Ring
//! side negotiated PCMU talkback, so the viewer's Opus must be transcoded; a PLI
//! from the viewer must reach the source as a key-frame request; shutdown must
//! release the lease.

mod whep_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{BufMut, BytesMut};
use ring_bridge::media::testutil::{FAKE_PPS, FAKE_SPS};
use ring_bridge::media::{
    Frame, Hub, HubOptions, LiveOpener, LiveSource, MediaKind, SourceError, TalkbackCodec,
    TalkbackPacket, TalkbackSender,
};
use ring_bridge::webrtc::{WhepOptions, WhepServer};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use whep_support::{make_offer, new_peer, opus_sine};

/// 10 fps, a key frame every 20 frames, no audio, PCMU talkback.
struct PcmuOpener {
    talk_rx: Mutex<Option<mpsc::Receiver<TalkbackPacket>>>,
    talk_tx: TalkbackSender,
    keyframe_requests: Arc<AtomicUsize>,
}

struct PcmuSource {
    n: u64,
    start: tokio::time::Instant,
    talk: TalkbackSender,
    keyframe_requests: Arc<AtomicUsize>,
}

#[async_trait]
impl LiveOpener for PcmuOpener {
    async fn open(
        &self,
        _camera: &str,
        _cancel: CancellationToken,
    ) -> Result<Box<dyn LiveSource>, SourceError> {
        Ok(Box::new(PcmuSource {
            n: 0,
            start: tokio::time::Instant::now(),
            talk: self.talk_tx.clone(),
            keyframe_requests: Arc::clone(&self.keyframe_requests),
        }))
    }
}

#[async_trait]
impl LiveSource for PcmuSource {
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
}

#[tokio::test(flavor = "multi_thread")]
async fn pcmu_talkback_pli_and_shutdown() {
    let (talk_tx, talk_rx) = TalkbackSender::channel(256);
    let requests = Arc::new(AtomicUsize::new(0));
    let opener = Arc::new(PcmuOpener {
        talk_rx: Mutex::new(Some(talk_rx)),
        talk_tx,
        keyframe_requests: Arc::clone(&requests),
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
        udp_ports: (41_000, 41_200),
        ..WhepOptions::default()
    };
    let whep = WhepServer::new(opts, hub.clone(), cancel.child_token());

    let (pc, talk) = new_peer().await;
    let (ssrc_tx, mut ssrc_rx) = mpsc::unbounded_channel();
    pc.on_track(Box::new(move |track, _, _| {
        let _ = ssrc_tx.send((track.kind(), track.ssrc()));
        tokio::spawn(async move { while track.read_rtp().await.is_ok() {} });
        Box::pin(async {})
    }));
    let offer = make_offer(&pc).await;
    let answer = whep.create_session("cam", &offer).await.unwrap();
    assert_eq!(answer.session_id.len(), 32);
    pc.set_remote_description(RTCSessionDescription::answer(answer.sdp).unwrap())
        .await
        .unwrap();
    assert_eq!(hub.stream("cam").viewers(), 1, "the session holds a lease");
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
    let sessions = whep.sessions(Some("cam"));
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].state, "connected");
    assert!(whep.set_talking("cam", &sessions[0].id, true).unwrap());
    assert!(whep.talk_state("cam").talking);
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
    assert_eq!(hub.stream("cam").viewers(), 0);
    assert!(
        whep.create_session("cam", &offer).await.is_err(),
        "no new sessions after shutdown"
    );
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
