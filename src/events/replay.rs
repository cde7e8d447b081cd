//! Recorded-event replay: which recording each camera's event stream plays, and
//! fetching that recording fresh from Ring.
//!
//! A camera's selection is a [`Selection`]: the newest recorded event (the
//! default), a slot such as `Motion 2` (the second newest motion, newest first,
//! counted among recorded events) or a fixed ding id. Slots are resolved against
//! the camera's history each time they are used, so `Motion 1` follows new motion.
//! The RTSP event stream (`crate::rtsp`), the REST API and the MQTT `event_select`
//! entity all go through one [`Replay`]. This module does not touch GStreamer and
//! publishes nothing itself: consumers watch [`Replay::changes`].
//!
//! Recording URLs are signed and expire (ring-api.md §4): [`Replay::fetch`] asks
//! Ring for a new one at every use and downloads the MP4 (bounded size and time).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::watch;
use tracing::debug;

use crate::base::{CameraId, ErrorKind, ResultExt};
use crate::ring::{HistoryEvent, HistoryQuery, RingApi};

/// Events per category that can be selected by slot (`Motion 1..5`).
pub const SLOTS: usize = 5;
/// History events read to resolve a slot (one page).
const HISTORY_PAGE: u32 = 50;

/// A category of recorded events, as the select options name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Every motion event (with or without a person).
    Motion,
    /// Doorbell presses (doorbells only).
    Ding,
    /// Motion where Ring saw a person.
    Person,
    /// Live views a user started.
    OnDemand,
}

impl Category {
    /// Every category, in the order of the select options.
    pub const ALL: [Category; 4] = [
        Category::Motion,
        Category::Ding,
        Category::Person,
        Category::OnDemand,
    ];

    /// The option label prefix (`Motion`, `Ding`, `Person`, `On-demand`).
    pub fn label(self) -> &'static str {
        match self {
            Category::Motion => "Motion",
            Category::Ding => "Ding",
            Category::Person => "Person",
            Category::OnDemand => "On-demand",
        }
    }

    fn matches(self, e: &HistoryEvent) -> bool {
        match self {
            Category::Motion => e.kind == "motion",
            Category::Person => e.kind == "motion" && e.person_detected,
            Category::Ding => e.kind == "ding",
            Category::OnDemand => e.kind == "on_demand",
        }
    }
}

/// Which recording a camera's event stream plays.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Selection {
    /// The newest recorded event of any kind (the default).
    #[default]
    Newest,
    /// The `n`th newest (1-based, `1..=SLOTS`) recorded event of a category.
    Slot(Category, usize),
    /// One event by its ding id.
    Event(String),
}

impl Selection {
    /// Parses a select option label: `Motion 2`, `Ding 1`, `Person 5`,
    /// `On-demand 3` (case-insensitive; `Latest` is the default selection).
    pub fn parse_label(s: &str) -> Result<Selection, ReplayError> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("latest") {
            return Ok(Selection::Newest);
        }
        let bad = || ReplayError::BadSelection(t.chars().take(40).collect());
        let (name, n) = t.rsplit_once(' ').ok_or_else(bad)?;
        let n: usize = n.trim().parse().map_err(|_| bad())?;
        let cat = Category::ALL
            .into_iter()
            .find(|c| c.label().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(bad)?;
        if !(1..=SLOTS).contains(&n) {
            return Err(bad());
        }
        Ok(Selection::Slot(cat, n))
    }

    /// Parses a ding id (digits only, at most 32).
    pub fn event(id: &str) -> Result<Selection, ReplayError> {
        let id = id.trim();
        if id.is_empty() || id.len() > 32 || !id.chars().all(|c| c.is_ascii_digit()) {
            return Err(ReplayError::BadSelection(id.chars().take(40).collect()));
        }
        Ok(Selection::Event(id.to_owned()))
    }

    /// The select option label: `Latest`, `Motion 2`, or `None` for an event
    /// chosen by id (it may be in no slot).
    pub fn label(&self) -> Option<String> {
        match self {
            Selection::Newest => Some("Latest".to_owned()),
            Selection::Slot(c, n) => Some(format!("{} {n}", c.label())),
            Selection::Event(_) => None,
        }
    }
}

/// The select options of a camera: `Latest`, then `Motion 1..5`, `Ding 1..5`
/// (doorbells only), `Person 1..5`, `On-demand 1..5`.
pub fn options(doorbell: bool) -> Vec<String> {
    let mut out = vec!["Latest".to_owned()];
    for c in Category::ALL {
        if c == Category::Ding && !doorbell {
            continue;
        }
        out.extend((1..=SLOTS).map(|n| format!("{} {n}", c.label())));
    }
    out
}

/// Why a replay could not be selected or played.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReplayError {
    /// The option or id is not one this camera offers.
    #[error(
        "{0:?} is not a valid event selection (use Latest, Motion 1..5, Ding 1..5, Person 1..5, On-demand 1..5 or a ding id)"
    )]
    BadSelection(String),
    /// The camera has no recordings (no Ring Protect plan).
    #[error("camera {0} has no recordings (Ring Protect plan needed)")]
    NoRecordings(CameraId),
    /// Nothing in the history matches the selection.
    #[error("camera {camera}: no recorded event for {selection}")]
    NoEvent {
        /// Camera id.
        camera: CameraId,
        /// The selection, as shown.
        selection: String,
    },
    /// The event exists but its recording cannot be played now.
    #[error("camera {camera}: event {event} has no playable recording ({status})")]
    NotReady {
        /// Camera id.
        camera: CameraId,
        /// Ding id.
        event: String,
        /// Ring's recording status (`pending`, `not recorded`, ...).
        status: String,
    },
    /// Ring refused or failed (history or recording URL).
    #[error("Ring: {0}")]
    Ring(#[from] crate::ring::Error),
    /// Downloading the MP4 from the signed URL failed.
    #[error("downloading recording {event}: {detail}")]
    Download {
        /// Ding id.
        event: String,
        /// What went wrong (never the signed URL).
        detail: String,
    },
}

impl ResultExt for ReplayError {
    fn kind(&self) -> ErrorKind {
        match self {
            ReplayError::BadSelection(_) => ErrorKind::InvalidArgument,
            ReplayError::NoRecordings(_) | ReplayError::NoEvent { .. } => ErrorKind::NotFound,
            ReplayError::NotReady { .. } => ErrorKind::FailedPrecondition,
            ReplayError::Ring(e) => e.kind(),
            ReplayError::Download { .. } => ErrorKind::Unavailable,
        }
    }
}

/// A selection resolved to one event of the history.
#[derive(Clone, Debug, Serialize)]
pub struct Resolved {
    /// The selection's label (`Motion 2`), `None` for an event chosen by id.
    pub select: Option<String>,
    /// The event.
    pub event: HistoryEvent,
}

/// A recording ready to play: the event and the MP4's bytes.
#[derive(Clone, Debug)]
pub struct Recording {
    /// The event played.
    pub event: HistoryEvent,
    /// The whole MP4 file.
    pub mp4: Bytes,
}

/// Options of [`Replay`].
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// Largest MP4 downloaded, in bytes. Default 200 MB.
    pub max_bytes: usize,
    /// Longest a download may take. Default 60 s.
    pub download_timeout: Duration,
    /// Event streams replay the clip continuously by default (`?loop=0` turns
    /// it off per client, `?loop=1` on). Default false.
    pub loop_default: bool,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            max_bytes: 200 * 1024 * 1024,
            download_timeout: Duration::from_secs(60),
            loop_default: false,
        }
    }
}

/// The replay selections of every camera (cheap to clone).
#[derive(Clone)]
pub struct Replay {
    ring: Arc<dyn RingApi>,
    http: reqwest::Client,
    opts: ReplayOptions,
    selected: Arc<Mutex<HashMap<CameraId, Selection>>>,
    changes: watch::Sender<CameraId>,
}

impl Replay {
    /// Selections for the cameras of `ring`, all [`Selection::Newest`] at first.
    pub fn new(ring: Arc<dyn RingApi>, opts: ReplayOptions) -> Replay {
        let http = reqwest::Client::builder()
            .timeout(opts.download_timeout)
            .build()
            .unwrap_or_default();
        Replay {
            ring,
            http,
            opts,
            selected: Arc::default(),
            changes: watch::channel(CameraId::new(0)).0,
        }
    }

    /// The options this replay was built with.
    pub fn options(&self) -> &ReplayOptions {
        &self.opts
    }

    /// The camera's current selection.
    pub fn selection(&self, camera_id: CameraId) -> Selection {
        self.map().get(&camera_id).cloned().unwrap_or_default()
    }

    /// Fires with a camera id whenever that camera's selection changed.
    pub fn changes(&self) -> watch::Receiver<CameraId> {
        self.changes.subscribe()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<CameraId, Selection>> {
        self.selected.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Checks `selection` against the camera's history and stores it. An
    /// unresolvable selection is refused and the old one kept.
    pub async fn select(
        &self,
        camera_id: CameraId,
        recordings: bool,
        selection: Selection,
    ) -> Result<Resolved, ReplayError> {
        let resolved = self.resolve_as(camera_id, recordings, &selection).await?;
        self.map().insert(camera_id, selection);
        self.changes.send_replace(camera_id);
        Ok(resolved)
    }

    /// Resolves the camera's current selection to one event.
    pub async fn resolve(
        &self,
        camera_id: CameraId,
        recordings: bool,
    ) -> Result<Resolved, ReplayError> {
        let sel = self.selection(camera_id);
        self.resolve_as(camera_id, recordings, &sel).await
    }

    async fn resolve_as(
        &self,
        camera_id: CameraId,
        recordings: bool,
        sel: &Selection,
    ) -> Result<Resolved, ReplayError> {
        if !recordings {
            return Err(ReplayError::NoRecordings(camera_id));
        }
        let page = self
            .ring
            .history(
                camera_id,
                HistoryQuery {
                    limit: HISTORY_PAGE,
                    older_than: None,
                },
            )
            .await?;
        let event = pick(&page.events, sel)
            .cloned()
            .ok_or_else(|| ReplayError::NoEvent {
                camera: camera_id,
                selection: sel.label().unwrap_or_else(|| match sel {
                    Selection::Event(id) => format!("event {id}"),
                    _ => String::new(),
                }),
            })?;
        Ok(Resolved {
            select: sel.label(),
            event,
        })
    }

    /// A fresh signed URL of the selected recording (for MQTT attributes; it
    /// expires, ask again rather than keeping it).
    pub async fn fresh_url(
        &self,
        camera_id: CameraId,
        recordings: bool,
    ) -> Result<(Resolved, url::Url), ReplayError> {
        let r = self.resolve(camera_id, recordings).await?;
        let url = self.playable_url(camera_id, &r.event).await?;
        Ok((r, url))
    }

    async fn playable_url(
        &self,
        camera_id: CameraId,
        event: &HistoryEvent,
    ) -> Result<url::Url, ReplayError> {
        if !event.playable() {
            return Err(ReplayError::NotReady {
                camera: camera_id,
                event: event.id.clone(),
                status: event
                    .recording_status
                    .clone()
                    .unwrap_or_else(|| "not recorded".to_owned()),
            });
        }
        Ok(self.ring.recording_url(&event.id).await?)
    }

    /// Resolves the selection, gets a fresh recording URL and downloads the
    /// MP4 (at most [`ReplayOptions::max_bytes`]).
    pub async fn fetch(
        &self,
        camera_id: CameraId,
        recordings: bool,
    ) -> Result<Recording, ReplayError> {
        let r = self.resolve(camera_id, recordings).await?;
        let url = self.playable_url(camera_id, &r.event).await?;
        let id = r.event.id.clone();
        let fail = |detail: String| ReplayError::Download {
            event: id.clone(),
            detail,
        };
        // The URL is a bearer credential: errors name the host only.
        let host = url.host_str().unwrap_or("?").to_owned();
        let mut resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| fail(format!("{host}: {}", e.without_url())))?;
        if !resp.status().is_success() {
            return Err(fail(format!("{host} answered HTTP {}", resp.status())));
        }
        let mut buf = Vec::with_capacity(resp.content_length().unwrap_or(0).min(1 << 24) as usize);
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| fail(format!("{host}: {}", e.without_url())))?
        {
            if buf.len() + chunk.len() > self.opts.max_bytes {
                return Err(fail(format!(
                    "larger than the {} byte limit",
                    self.opts.max_bytes
                )));
            }
            buf.extend_from_slice(&chunk);
        }
        debug!(camera = %camera_id, event = %r.event.id, bytes = buf.len(), "recording downloaded");
        Ok(Recording {
            event: r.event,
            mp4: Bytes::from(buf),
        })
    }
}

/// How long a signed recording URL stays valid from `now` (Unix seconds), from
/// its S3-style `X-Amz-Date` + `X-Amz-Expires` query; `None` when it does not say.
pub fn url_lifetime(url: &url::Url, now_unix: i64) -> Option<Duration> {
    let mut date = None;
    let mut expires = None;
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "X-Amz-Date" => date = Some(v.into_owned()),
            "X-Amz-Expires" => expires = v.parse::<i64>().ok(),
            _ => {}
        }
    }
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let signed = time::PrimitiveDateTime::parse(&date?, &fmt)
        .ok()?
        .assume_utc()
        .unix_timestamp();
    let left = signed.checked_add(expires?)?.checked_sub(now_unix)?;
    Some(Duration::from_secs(u64::try_from(left).unwrap_or(0)))
}

/// The event `sel` names among `events` (newest first). Slots count recorded
/// events only (ready or still processing), so `Motion 1` is the newest motion
/// that has a recording.
pub fn pick<'a>(events: &'a [HistoryEvent], sel: &Selection) -> Option<&'a HistoryEvent> {
    let mut recorded = events.iter().filter(|e| e.recorded);
    match sel {
        Selection::Newest => recorded.next(),
        Selection::Slot(c, n) => recorded.filter(|e| c.matches(e)).nth(n.checked_sub(1)?),
        Selection::Event(id) => events.iter().find(|e| &e.id == id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, kind: &str, person: bool, recorded: bool) -> HistoryEvent {
        HistoryEvent {
            id: id.into(),
            camera_id: CameraId::new(1),
            created_at: String::new(),
            kind: kind.into(),
            person_detected: person,
            recorded,
            recording_status: recorded.then(|| "ready".into()),
            duration_s: None,
            answered: false,
            thumbnail_url: None,
        }
    }

    #[test]
    fn labels_parse_and_round_trip() {
        for label in options(true) {
            let s = Selection::parse_label(&label).expect(&label);
            assert_eq!(s.label().as_deref(), Some(label.as_str()));
        }
        assert_eq!(
            Selection::parse_label(" on-demand 3 ").unwrap(),
            Selection::Slot(Category::OnDemand, 3)
        );
        for bad in ["Motion 0", "Motion 6", "Motion", "Wind 1", "", "Motion x"] {
            assert!(Selection::parse_label(bad).is_err(), "{bad}");
        }
        assert!(Selection::event("12a").is_err());
        assert_eq!(options(false).len(), 1 + 3 * SLOTS);
        assert_eq!(options(true).len(), 1 + 4 * SLOTS);
    }

    #[test]
    fn url_lifetime_reads_the_signature() {
        let u = url::Url::parse(
            "https://s3.example/r.mp4?X-Amz-Date=20260101T000000Z&X-Amz-Expires=3600&X-Amz-Signature=x",
        )
        .unwrap();
        let signed = 1_767_225_600; // 2026-01-01T00:00:00Z
        assert_eq!(
            url_lifetime(&u, signed + 600),
            Some(Duration::from_secs(3000))
        );
        assert_eq!(url_lifetime(&u, signed + 7200), Some(Duration::ZERO));
        let plain = url::Url::parse("https://example/r.mp4").unwrap();
        assert_eq!(url_lifetime(&plain, signed), None);
    }

    #[test]
    fn slots_count_recorded_events_newest_first() {
        let events = [
            ev("9", "motion", false, false),
            ev("8", "ding", false, true),
            ev("7", "motion", true, true),
            ev("6", "on_demand", false, true),
            ev("5", "motion", false, true),
        ];
        let id = |s: &Selection| pick(&events, s).map(|e| e.id.as_str());
        assert_eq!(id(&Selection::Newest), Some("8"));
        assert_eq!(id(&Selection::Slot(Category::Motion, 1)), Some("7"));
        assert_eq!(id(&Selection::Slot(Category::Motion, 2)), Some("5"));
        assert_eq!(id(&Selection::Slot(Category::Motion, 3)), None);
        assert_eq!(id(&Selection::Slot(Category::Person, 1)), Some("7"));
        assert_eq!(id(&Selection::Slot(Category::Ding, 1)), Some("8"));
        assert_eq!(id(&Selection::Slot(Category::OnDemand, 1)), Some("6"));
        assert_eq!(id(&Selection::Event("9".into())), Some("9"));
    }
}
