//! Announcements: a clip or speech played on a camera's speaker through the
//! talkback path (`POST /api/ring/cameras/:id/announce`, MQTT
//! `…/announce/command`). Design: `docs/design/0010-announce.md`.
//!
//! One announcement ([`Announcer::announce`]):
//! 1. gets its audio: the uploaded file, a URL fetched with size and time limits
//!    (`fetch.rs`), or text spoken by eSpeak NG (`tts.rs`);
//! 2. decodes it to PCM (`crate::codec::clip`), refusing anything that is not
//!    audio or plays longer than [`AnnounceOptions::max_duration`], and applies
//!    the volume;
//! 3. takes the camera's talk floor ([`crate::media::Floors`], shared with WHEP
//!    talkback) or waits for it as long as the caller allows;
//! 4. takes a hub lease (which opens a Ring live call, or joins the running
//!    one; the call turns the camera speaker on as for any talkback) and waits
//!    for the session;
//! 5. encodes to the codec Ring negotiated (Opus, or PCMU via 8 kHz and G.711)
//!    and plays it at real-time pace (`play.rs`);
//! 6. releases the floor and the lease; the call lingers and stops as usual.
//!
//! Every announcement runs as a task on the announcer's tracker, so one whose
//! HTTP client went away still finishes and releases the floor. This module may
//! use `media`, `codec` and `base`; it knows nothing of HTTP, MQTT or Ring.

mod error;
mod fetch;
mod play;
mod source;
pub mod tts;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Semaphore, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info, info_span, warn};

pub use error::AnnounceError;
pub use source::{AnnounceRequest, AudioType, Clip, DEFAULT_LANG, JsonRequest};
pub use tts::TtsOptions;

use crate::base::{CameraId, ResultExt};
use crate::codec::clip::{self, OPUS_PACKET_SAMPLES, Pcm};
use crate::codec::g711;
use crate::media::{Claim, Hub, TalkbackCodec, TalkbackPacket};

/// Limits of announcements. The daemon uses the defaults.
#[derive(Clone, Debug)]
pub struct AnnounceOptions {
    /// Largest audio file (upload or URL). Default 2 MiB.
    pub max_bytes: usize,
    /// Longest clip. Default 30 s.
    pub max_duration: Duration,
    /// Longest URL fetch, redirects included. Default 15 s.
    pub fetch_timeout: Duration,
    /// The speech engine.
    pub tts: TtsOptions,
    /// Longest wait for the camera's live session (and its talkback). Default 30 s.
    pub session_timeout: Duration,
    /// Longest wait for the talk floor a caller may ask for. Default 60 s.
    pub max_floor_wait: Duration,
    /// Longest decode or encode of one clip. Default 20 s.
    pub codec_timeout: Duration,
    /// Announcements prepared at once over all cameras (decoding is CPU work);
    /// more wait their turn. Default 2.
    pub max_concurrent: usize,
}

impl Default for AnnounceOptions {
    fn default() -> Self {
        AnnounceOptions {
            max_bytes: 2 * 1024 * 1024,
            max_duration: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(15),
            tts: TtsOptions::default(),
            session_timeout: Duration::from_secs(30),
            max_floor_wait: Duration::from_secs(60),
            codec_timeout: Duration::from_secs(20),
            max_concurrent: 2,
        }
    }
}

/// A finished announcement (the answer of `POST …/announce`).
#[derive(Clone, Debug, Serialize)]
pub struct Announcement {
    /// Its id (`announce-<n>`), also the talk-floor holder while it plays.
    pub id: String,
    /// The camera (hub key; a decimal string in JSON, as it always was).
    #[serde(serialize_with = "crate::base::id::as_string")]
    pub camera: CameraId,
    /// `audio`, `url` or `text`.
    pub source: &'static str,
    /// The codec played: `opus` or `pcmu`.
    pub codec: &'static str,
    /// Length of the clip, ms.
    pub clip_ms: u64,
    /// Audio handed to the camera, ms (less than `clip_ms` only if packets were
    /// dropped while the live session renewed).
    pub played_ms: u64,
    /// Time spent waiting for the talk floor, ms.
    pub waited_ms: u64,
    /// When playback started (RFC 3339, UTC).
    pub started_at: String,
    /// When the last packet had played out (RFC 3339, UTC).
    pub finished_at: String,
}

struct Inner {
    hub: Hub,
    opts: AnnounceOptions,
    http: reqwest::Client,
    next: AtomicU64,
    permits: Semaphore,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

/// Plays announcements. Cheap to clone.
#[derive(Clone)]
pub struct Announcer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Announcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Announcer").finish_non_exhaustive()
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl Announcer {
    /// An announcer playing through `hub`. `cancel` (a child of the run's token)
    /// stops every announcement; see also [`Self::shutdown`].
    pub fn new(hub: Hub, opts: AnnounceOptions, cancel: CancellationToken) -> Self {
        Announcer {
            inner: Arc::new(Inner {
                http: fetch::client(opts.fetch_timeout),
                permits: Semaphore::new(opts.max_concurrent.max(1)),
                hub,
                opts,
                next: AtomicU64::new(1),
                cancel,
                tracker: TaskTracker::new(),
            }),
        }
    }

    /// The limits in force.
    pub fn options(&self) -> &AnnounceOptions {
        &self.inner.opts
    }

    /// Plays `req` on `camera` (hub key) and returns once it has played. The
    /// caller checks that the camera exists and can talk (online, live view
    /// allowed). Runs on the announcer's tracker: if the caller stops waiting,
    /// the announcement still finishes.
    pub async fn announce(
        &self,
        camera: CameraId,
        req: AnnounceRequest,
    ) -> Result<Announcement, AnnounceError> {
        if let Some(v) = req.volume
            && !(1..=200).contains(&v)
        {
            return Err(AnnounceError::BadRequest(format!(
                "volume {v} is out of range; allowed 1..=200 (percent)"
            )));
        }
        let max_wait = self.inner.opts.max_floor_wait;
        if req.wait > max_wait {
            return Err(AnnounceError::BadRequest(format!(
                "wait_s {} is too long; at most {}",
                req.wait.as_secs(),
                max_wait.as_secs()
            )));
        }
        if self.inner.cancel.is_cancelled() {
            return Err(AnnounceError::ShuttingDown);
        }
        let id = format!(
            "announce-{}",
            self.inner.next.fetch_add(1, Ordering::Relaxed)
        );
        let span = info_span!("announce", camera = %camera, id = %id, source = req.clip.source());
        let (tx, rx) = oneshot::channel();
        let inner = self.inner.clone();
        self.inner.tracker.spawn(
            async move {
                let cancel = inner.cancel.clone();
                let r = tokio::select! {
                    _ = cancel.cancelled() => Err(AnnounceError::ShuttingDown),
                    r = inner.run(camera, &id, req) => r,
                };
                // Idempotent; also covers a run cut short by shutdown.
                inner.hub.floors().release(camera, &id);
                match &r {
                    Ok(a) => info!(
                        codec = a.codec,
                        clip_ms = a.clip_ms,
                        played_ms = a.played_ms,
                        "announcement finished"
                    ),
                    Err(e) => {
                        warn!(kind = %e.kind(), err = %crate::base::error::chain(e), "announcement failed")
                    }
                }
                let _ = tx.send(r);
            }
            .instrument(span),
        );
        rx.await
            .map_err(|_| AnnounceError::Task("the announcement"))?
    }

    /// Stops every announcement and waits (bounded) for their tasks.
    pub async fn shutdown(&self) {
        self.inner.cancel.cancel();
        self.inner.tracker.close();
        if tokio::time::timeout(Duration::from_secs(10), self.inner.tracker.wait())
            .await
            .is_err()
        {
            warn!("announcements did not stop within 10 s");
        }
    }
}

/// Runs a blocking codec step on the blocking pool.
async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, clip::ClipError> + Send + 'static,
) -> Result<Result<T, clip::ClipError>, AnnounceError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| AnnounceError::Task(what))
}

impl Inner {
    /// The whole announcement; the caller releases the floor afterwards.
    async fn run(
        &self,
        camera: CameraId,
        id: &str,
        req: AnnounceRequest,
    ) -> Result<Announcement, AnnounceError> {
        let source = req.clip.source();
        let pcm = {
            let _permit = self
                .permits
                .acquire()
                .await
                .map_err(|_| AnnounceError::ShuttingDown)?;
            let mut pcm = self.decode(req.clip).await?;
            if let Some(v) = req.volume {
                pcm.scale(f32::from(v) / 100.0);
            }
            pcm
        };
        let clip_len = pcm.duration();

        let floors = self.hub.floors();
        let asked = Instant::now();
        floors
            .take_within(camera, id, Claim::Announce, req.wait)
            .await
            .map_err(|(holder, by)| AnnounceError::FloorTaken { camera, holder, by })?;
        let waited = asked.elapsed();

        let lease = self.hub.lease(camera);
        let stream = lease.stream().clone();
        stream
            .wait_ready(self.opts.session_timeout)
            .await
            .map_err(|source| AnnounceError::NoSession { camera, source })?;
        let codec = stream
            .talkback_codec()
            .ok_or_else(|| AnnounceError::CannotTalk {
                camera,
                reason: "its live session takes no talkback".into(),
            })?;
        let (packets, rate) = self.encode(pcm, codec).await?;
        // Encoding took a while: the floor's timeout counts from the last touch.
        floors.touch(camera, id);
        let started_at = now_rfc3339();
        let played = play::play(&stream, floors, id, packets, rate, &self.cancel).await?;
        drop(lease);
        Ok(Announcement {
            id: id.to_owned(),
            camera,
            source,
            codec: match codec {
                TalkbackCodec::Opus => "opus",
                TalkbackCodec::Pcmu => "pcmu",
            },
            clip_ms: ms(clip_len),
            played_ms: ms(played.played),
            waited_ms: ms(waited),
            started_at,
            finished_at: now_rfc3339(),
        })
    }

    /// The clip as PCM at [`clip::CLIP_RATE`].
    async fn decode(&self, c: Clip) -> Result<Pcm, AnnounceError> {
        let max_bytes = self.opts.max_bytes;
        let data = match c {
            Clip::Audio { data, .. } => {
                if data.len() > max_bytes {
                    return Err(AnnounceError::TooLarge { limit: max_bytes });
                }
                data
            }
            Clip::Url(url) => {
                let url = fetch::check_url(&url)?;
                fetch::fetch(&self.http, &url, max_bytes).await?.0
            }
            Clip::Text { text, lang } => {
                let (text, lang) = tts::check(&text, &lang)?;
                tts::speak(&self.opts.tts, &text, &lang).await?
            }
        };
        let (max, limit) = (self.opts.max_duration, self.opts.codec_timeout);
        blocking("decoding", move || clip::decode(data, max, limit))
            .await?
            .map_err(AnnounceError::from_decode)
    }

    /// `pcm` as talkback packets in `codec`, with the codec's clock rate.
    async fn encode(
        &self,
        pcm: Pcm,
        codec: TalkbackCodec,
    ) -> Result<(Vec<TalkbackPacket>, u32), AnnounceError> {
        let limit = self.opts.codec_timeout;
        match codec {
            TalkbackCodec::Opus => {
                let opus = blocking("encoding", move || clip::encode_opus(&pcm, limit))
                    .await?
                    .map_err(AnnounceError::Encode)?;
                let packets = opus
                    .into_iter()
                    .map(|data| TalkbackPacket {
                        codec,
                        data,
                        samples: OPUS_PACKET_SAMPLES,
                    })
                    .collect();
                Ok((packets, clip::CLIP_RATE))
            }
            TalkbackCodec::Pcmu => {
                let low = blocking("resampling", move || clip::resample(&pcm, 8_000, limit))
                    .await?
                    .map_err(AnnounceError::Encode)?;
                let packets = g711::ulaw_packets(&low.samples)
                    .into_iter()
                    .map(|data| TalkbackPacket {
                        codec,
                        samples: u32::try_from(data.len()).unwrap_or(0),
                        data,
                    })
                    .collect();
                Ok((packets, 8_000))
            }
        }
    }
}

#[cfg(test)]
mod tests;
