//! The per-camera supervisor task: opens live sessions while leases exist, publishes
//! their frames on one continuous timeline, renews sessions before their cap without
//! a gap, retries failures with jittered backoff, and closes sources after the linger.
//!
//! Every new session (first start, renewal, recovery) is a *candidate* until its first
//! video key frame; then it is promoted to *current* at that key frame and the old
//! current session (if any) is closed. Only the current session's frames are
//! published, so consumers switch exactly at a key frame.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, debug, info, info_span, warn};

use super::stream::{Shared, lock};
use super::timeline::{SessionBase, Timeline};
use super::{Frame, LiveSource, MediaKind, SourceError, StreamState, VideoCodec, h264, h265};
use crate::base::timer::Timer;
use crate::base::{ErrorKind, ResultExt as _, error::chain};

/// Upper bound for one `LiveSource::close` call.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

type OpenResult = Result<Box<dyn LiveSource>, SourceError>;

/// Spawns the supervisor for `shared` on the hub's runtime and tracker.
pub(crate) fn spawn(shared: Arc<Shared>) {
    let span = info_span!("camera", camera = %shared.id);
    let deps = shared.deps.clone();
    deps.tracker
        .spawn_on(run(shared).instrument(span), &deps.rt);
}

async fn run(shared: Arc<Shared>) {
    let timeline = std::mem::take(&mut lock(&shared.state).timeline);
    let mut sup = Supervisor::new(shared.clone(), timeline);
    loop {
        sup.run_until_idle().await;
        let mut st = lock(&shared.state);
        if shared.cancel.is_cancelled() || *shared.leases.borrow() == 0 {
            st.running = false;
            st.timeline = std::mem::take(&mut sup.timeline);
            st.gop.clear();
            st.gop_started = None;
            st.has_audio = false;
            st.talkback = None;
            drop(st);
            shared.stats.session_ended(false);
            shared.ready.send_replace(None);
            shared.set_status(StreamState::Inactive, None);
            info!("live source stopped");
            return;
        }
        debug!("lease taken while stopping; starting again");
    }
}

struct Session {
    src: Box<dyn LiveSource>,
    cancel: CancellationToken,
    base: SessionBase,
    id: u64,
    /// Candidate: first key frame deadline. Current: stall deadline.
    deadline: Instant,
}

enum Candidate {
    Opening {
        rx: oneshot::Receiver<OpenResult>,
        cancel: CancellationToken,
        id: u64,
    },
    Open(Session),
}

enum CandidateEvent {
    Opened(Result<OpenResult, oneshot::error::RecvError>),
    Frame(Option<Result<Frame, SourceError>>),
}

enum Event {
    Cancelled,
    Leases,
    KeyframeRequest,
    Current(Option<Result<Frame, SourceError>>),
    Candidate(CandidateEvent),
    Timer,
}

struct Supervisor {
    shared: Arc<Shared>,
    timeline: Timeline,
    backoff: super::backoff::Backoff,
    leases: tokio::sync::watch::Receiver<usize>,
    current: Option<Session>,
    candidate: Option<Candidate>,
    retry_at: Option<Instant>,
    renew_at: Option<Instant>,
    linger_at: Option<Instant>,
    next_session_id: u64,
    sps: Option<Bytes>,
    pps: Option<Bytes>,
    /// Codec of the last key frame published.
    codec: VideoCodec,
    /// H.265 parameter sets (the H.264 ones are `sps`/`pps`).
    h265: h265::ParamSets,
    /// The one timer for every deadline above (see `next_event`).
    timer: Timer,
}

impl Supervisor {
    fn new(shared: Arc<Shared>, timeline: Timeline) -> Self {
        let opts = &shared.deps.opts;
        Supervisor {
            backoff: super::backoff::Backoff::new(opts.retry_min, opts.retry_max),
            leases: shared.leases.subscribe(),
            shared,
            timeline,
            current: None,
            candidate: None,
            retry_at: None,
            renew_at: None,
            linger_at: None,
            next_session_id: 0,
            sps: None,
            pps: None,
            codec: VideoCodec::H264,
            h265: h265::ParamSets::default(),
            timer: Timer::default(),
        }
    }

    /// Runs sessions until the linger expires with no lease, or cancellation; then
    /// closes every session.
    async fn run_until_idle(&mut self) {
        self.start_open();
        self.on_leases();
        loop {
            let ev = self.next_event().await;
            let stop = match ev {
                Event::Cancelled => true,
                Event::Leases => {
                    self.on_leases();
                    false
                }
                Event::KeyframeRequest => {
                    if let Some(s) = &self.current {
                        s.src.request_keyframe();
                    } else if let Some(Candidate::Open(s)) = &self.candidate {
                        s.src.request_keyframe();
                    }
                    false
                }
                Event::Current(f) => {
                    self.on_current(f);
                    false
                }
                Event::Candidate(c) => {
                    self.on_candidate(c);
                    false
                }
                Event::Timer => self.on_timer(),
            };
            if stop {
                break;
            }
        }
        self.teardown().await;
    }

    async fn next_event(&mut self) -> Event {
        // The stall deadline moves on with every frame: the timer only moves
        // earlier, so a frame costs no timer re-registration. Waking before the
        // (moved) deadline is a no-op in `on_timer`; the timer is re-armed here.
        if let Some(d) = self.next_deadline() {
            self.timer.set_no_later(d.into_std());
        }
        let current = &mut self.current;
        let candidate = &mut self.candidate;
        let leases = &mut self.leases;
        let shared = &self.shared;
        let timer = &mut self.timer;
        tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => Event::Cancelled,
            _ = leases.changed() => Event::Leases,
            _ = shared.keyframe.notified() => Event::KeyframeRequest,
            f = next_frame(current) => Event::Current(f),
            c = candidate_event(candidate) => Event::Candidate(c),
            _ = timer.wait() => Event::Timer,
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let cand = match &self.candidate {
            Some(Candidate::Open(s)) => Some(s.deadline),
            _ => None,
        };
        [
            self.linger_at,
            self.retry_at,
            self.renew_at,
            cand,
            self.current.as_ref().map(|s| s.deadline),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn on_leases(&mut self) {
        let n = *self.leases.borrow_and_update();
        if n == 0 {
            if self.linger_at.is_none() {
                debug!(linger = ?self.shared.deps.opts.linger, "last lease dropped; lingering");
                self.linger_at = Some(Instant::now() + self.shared.deps.opts.linger);
            }
        } else {
            self.linger_at = None;
        }
    }

    /// Returns true when the stream should stop.
    fn on_timer(&mut self) -> bool {
        let now = Instant::now();
        if self.linger_at.is_some_and(|t| t <= now) {
            return true;
        }
        if let Some(Candidate::Open(s)) = &self.candidate
            && s.deadline <= now
        {
            let err = SourceError::new(
                ErrorKind::DeadlineExceeded,
                format!(
                    "no key frame within {:?} of opening",
                    self.shared.deps.opts.keyframe_timeout
                ),
            );
            self.candidate_failed(err);
        }
        if self.current.as_ref().is_some_and(|s| s.deadline <= now) {
            let err = SourceError::new(
                ErrorKind::DeadlineExceeded,
                format!("no frame for {:?}", self.shared.deps.opts.stall_timeout),
            );
            self.current_lost(Some(err));
        }
        if self.renew_at.is_some_and(|t| t <= now) {
            self.renew_at = None;
            if self.candidate.is_none() {
                info!("renewing live session before its cap");
                self.start_open();
            }
        }
        if self.retry_at.is_some_and(|t| t <= now) {
            self.retry_at = None;
            if self.candidate.is_none() {
                self.start_open();
            }
        }
        false
    }

    /// Opens a new candidate session in a tracked task.
    fn start_open(&mut self) {
        if self.candidate.is_some() {
            return;
        }
        self.retry_at = None;
        if self.current.is_none() {
            self.shared.set_status(StreamState::Activating, None);
        }
        let id = self.next_session_id;
        self.next_session_id += 1;
        let cancel = self.shared.cancel.child_token();
        let (tx, rx) = oneshot::channel();
        let deps = self.shared.deps.clone();
        let camera = self.shared.id;
        let token = cancel.clone();
        let open_timeout = deps.opts.open_timeout;
        let task = async move {
            let opened = tokio::select! {
                r = tokio::time::timeout(open_timeout, deps.opener.open(camera, token.clone())) => match r {
                    Ok(r) => r,
                    Err(_) => Err(SourceError::new(
                        ErrorKind::DeadlineExceeded,
                        format!("live session not established within {open_timeout:?}"),
                    )),
                },
                _ = token.cancelled() => Err(SourceError::new(ErrorKind::Cancelled, "open cancelled")),
            };
            if let Err(Ok(src)) = tx.send(opened) {
                // Nobody wants this session any more: hang up at once.
                close_source(src, token).await;
            }
        };
        debug!(session = id, "opening live session");
        self.shared
            .deps
            .tracker
            .spawn_on(task.in_current_span(), &self.shared.deps.rt);
        self.candidate = Some(Candidate::Opening { rx, cancel, id });
    }

    fn on_candidate(&mut self, ev: CandidateEvent) {
        match ev {
            CandidateEvent::Opened(r) => {
                let Some(Candidate::Opening { cancel, id, .. }) = self.candidate.take() else {
                    return;
                };
                match r {
                    Ok(Ok(src)) => {
                        info!(session = id, "live session open; waiting for a key frame");
                        src.request_keyframe();
                        let deadline = Instant::now() + self.shared.deps.opts.keyframe_timeout;
                        self.candidate = Some(Candidate::Open(Session {
                            src,
                            cancel,
                            base: SessionBase::default(),
                            id,
                            deadline,
                        }));
                    }
                    Ok(Err(e)) => self.candidate_failed(e),
                    Err(_) => self.candidate_failed(SourceError::new(
                        ErrorKind::Internal,
                        "open task ended without an answer",
                    )),
                }
            }
            CandidateEvent::Frame(Some(Ok(f))) if f.is_video_keyframe() => self.promote(f),
            CandidateEvent::Frame(Some(Ok(_))) => {} // before its first key frame: dropped
            CandidateEvent::Frame(Some(Err(e))) => self.candidate_failed(e),
            CandidateEvent::Frame(None) => self.candidate_failed(SourceError::new(
                ErrorKind::Unavailable,
                "live session ended before its first key frame",
            )),
        }
    }

    /// The candidate failed (open error, early end, no key frame): close it, report,
    /// and schedule a retry.
    fn candidate_failed(&mut self, err: SourceError) {
        if let Some(c) = self.candidate.take() {
            self.close_candidate(c);
        }
        let delay = self.backoff.next_delay(err.kind().is_retryable());
        let text = chain(&err);
        warn!(err = %text, retry_in = ?delay, "live session failed");
        if self.current.is_none() {
            self.shared
                .set_status(StreamState::Failed, Some((err.kind(), text)));
        }
        self.retry_at = Some(Instant::now() + delay);
    }

    /// The candidate produced its first key frame: switch consumers to it.
    fn promote(&mut self, keyframe: Frame) {
        let Some(Candidate::Open(mut new)) = self.candidate.take() else {
            return;
        };
        self.shared.stats.session_started(
            new.src.session_age(),
            self.current.is_some(),
            new.src.transport_stats(),
        );
        if let Some(old) = self.current.take() {
            info!(
                old = old.id,
                new = new.id,
                "switching to renewed live session at a key frame"
            );
            self.spawn_close(old);
        } else {
            info!(session = new.id, "live session active");
        }
        {
            let mut st = lock(&self.shared.state);
            st.has_audio = new.src.has_audio();
            st.talkback = new.src.talkback();
        }
        let learned = self.shared.deps.caps.get(self.shared.id);
        let cap = match (new.src.session_cap(), learned) {
            (Some(d), Some(l)) => Some(d.min(l)),
            (d, l) => d.or(l),
        };
        self.renew_at = cap.map(|cap| {
            let lead = self.shared.deps.opts.renew_before.min(cap / 2);
            Instant::now()
                + cap
                    .saturating_sub(lead)
                    .saturating_sub(new.src.session_age())
        });
        self.backoff.reset();
        self.retry_at = None;
        self.publish(&mut new, keyframe);
        self.current = Some(new);
        self.shared.set_status(StreamState::Active, None);
    }

    fn on_current(&mut self, f: Option<Result<Frame, SourceError>>) {
        match f {
            Some(Ok(frame)) => {
                if let Some(mut s) = self.current.take() {
                    self.publish(&mut s, frame);
                    self.current = Some(s);
                }
            }
            Some(Err(e)) => self.current_lost(Some(e)),
            None => self.current_lost(None),
        }
    }

    /// The current session ended or failed: close it and recover.
    fn current_lost(&mut self, err: Option<SourceError>) {
        let Some(old) = self.current.take() else {
            return;
        };
        if err.is_none() {
            self.learn_cap(old.src.session_cap(), old.src.session_age());
        }
        self.spawn_close(old);
        self.renew_at = None;
        self.shared.stats.session_ended(true);
        self.shared.clear_cache();
        let delay = self
            .backoff
            .next_delay(err.as_ref().is_none_or(|e| e.kind().is_retryable()));
        match &err {
            Some(e) => {
                let text = chain(e);
                warn!(err = %text, "live session failed; recovering");
                self.shared
                    .set_status(StreamState::Failed, Some((e.kind(), text)));
            }
            None => {
                info!("live session ended; recovering");
                self.shared.set_status(StreamState::Activating, None);
            }
        }
        if self.candidate.is_none() {
            self.retry_at = Some(Instant::now() + delay);
        }
    }

    /// The current session ended normally after `observed`: if that is well
    /// before its declared cap (or the cap learned so far), remember it, persist
    /// it off the runtime, and renew ahead of it from now on.
    fn learn_cap(&self, declared: Option<Duration>, observed: Duration) {
        let caps = &self.shared.deps.caps;
        let Some(cap) = caps.observe_end(self.shared.id, declared, observed) else {
            return;
        };
        info!(
            learned_cap_s = cap.as_secs_f32(),
            declared_cap_s = declared.map(|d| d.as_secs_f32()),
            "Ring ended the live session before its cap; renewing ahead of the learned cap from now on"
        );
        self.shared.set_learned_cap(cap);
        let shared = self.shared.clone();
        let save = move || {
            if let Err(e) = shared.deps.caps.save() {
                warn!(
                    camera = %shared.id,
                    err = %e,
                    file = ?shared.deps.caps.file(),
                    "cannot persist the learned session cap"
                );
            }
        };
        let deps = &self.shared.deps;
        deps.tracker.spawn_blocking_on(save, &deps.rt);
    }

    /// Rebases, fixes up and publishes one frame of `session`.
    fn publish(&mut self, session: &mut Session, mut f: Frame) {
        let now = Instant::now();
        session.deadline = now + self.shared.deps.opts.stall_timeout;
        if f.kind == MediaKind::Audio {
            f.keyframe = false;
        }
        let mut params_changed = false;
        let codec = session.src.video_codec();
        if f.is_video_keyframe() && codec != self.codec {
            self.codec = codec;
            params_changed = true;
        }
        if f.is_video_keyframe() && codec == VideoCodec::H265 {
            params_changed |= self.h265.update_from(&h265::find_parameter_sets(&f.data));
            f.data = self.h265.prepend_to(&f.data);
        } else if f.is_video_keyframe() {
            let (sps, pps) = h264::find_parameter_sets(&f.data);
            if sps.is_some() && sps != self.sps {
                params_changed = true;
                self.sps = sps.clone();
            }
            if pps.is_some() && pps != self.pps {
                params_changed = true;
                self.pps = pps.clone();
            }
            if (sps.is_none() || pps.is_none())
                && let (Some(s), Some(p)) = (&self.sps, &self.pps)
            {
                f.data = h264::prepend_parameter_sets(&f.data, s, p);
            }
        }
        f.pts = self
            .timeline
            .map(&mut session.base, f.kind, f.pts, f.duration, now);
        let is_key = f.is_video_keyframe();
        self.shared.publish(f);
        if is_key && (params_changed || self.shared.ready.borrow().is_none()) {
            self.update_ready();
        }
    }

    fn update_ready(&self) {
        if self.codec == VideoCodec::H265 {
            match self.h265.video_params() {
                Ok(p) => {
                    debug!(codec = %p.codec, width = p.width, height = p.height, fmtp = %p.profile_level_id, "video parameters");
                    self.shared.set_ready(p);
                }
                Err(e) => warn!(err = %e, "H.265 stream cannot be described yet"),
            }
            return;
        }
        let (Some(sps), Some(pps)) = (&self.sps, &self.pps) else {
            warn!("key frame without SPS/PPS; stream cannot be described yet");
            return;
        };
        match h264::video_params(sps.clone(), pps.clone()) {
            Ok(p) => {
                debug!(width = p.width, height = p.height, profile_level_id = %p.profile_level_id, "video parameters");
                self.shared.set_ready(p);
            }
            Err(e) => warn!(err = %e, "unparseable SPS; stream cannot be described"),
        }
    }

    fn close_candidate(&self, c: Candidate) {
        match c {
            Candidate::Opening { cancel, .. } => cancel.cancel(), // the open task closes it
            Candidate::Open(s) => self.spawn_close(s),
        }
    }

    fn spawn_close(&self, s: Session) {
        debug!(session = s.id, "closing live session");
        let deps = &self.shared.deps;
        deps.tracker
            .spawn_on(close_source(s.src, s.cancel).in_current_span(), &deps.rt);
    }

    /// Closes everything (awaiting the hang-ups) before the stream stops.
    async fn teardown(&mut self) {
        self.linger_at = None;
        self.retry_at = None;
        self.renew_at = None;
        if let Some(c) = self.candidate.take() {
            match c {
                Candidate::Opening { cancel, .. } => cancel.cancel(),
                Candidate::Open(s) => close_source(s.src, s.cancel).await,
            }
        }
        if let Some(s) = self.current.take() {
            info!(session = s.id, "closing live session");
            close_source(s.src, s.cancel).await;
        }
    }
}

/// Hangs up a source (bounded by [`CLOSE_TIMEOUT`]), then cancels its token.
async fn close_source(src: Box<dyn LiveSource>, cancel: CancellationToken) {
    if tokio::time::timeout(CLOSE_TIMEOUT, src.close())
        .await
        .is_err()
    {
        warn!("live source did not close within {CLOSE_TIMEOUT:?}");
    }
    cancel.cancel();
}

async fn next_frame(s: &mut Option<Session>) -> Option<Result<Frame, SourceError>> {
    match s {
        Some(s) => s.src.next().await,
        None => std::future::pending().await,
    }
}

async fn candidate_event(c: &mut Option<Candidate>) -> CandidateEvent {
    match c {
        Some(Candidate::Opening { rx, .. }) => CandidateEvent::Opened(rx.await),
        Some(Candidate::Open(s)) => CandidateEvent::Frame(s.src.next().await),
        None => std::future::pending().await,
    }
}
