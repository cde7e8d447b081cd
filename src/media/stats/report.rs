//! The statistics as reported (REST `stats`, `/metrics`, MQTT attributes):
//! plain serializable values built by [`super::StreamStats::snapshot`], and
//! [`ViewerKind`], the bounded label viewers are counted by.

use serde::Serialize;

/// Who holds a viewer [`Lease`](crate::media::Lease): the bounded label of `/metrics` and
/// the keys of [`LiveStats::viewers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewerKind {
    /// An RTSP media (one per shared media, however many RTSP clients watch it).
    Rtsp,
    /// A browser (WHEP) session.
    Whep,
    /// A live snapshot being made from the running stream's cached key frame
    /// (`snapshot::LiveSnapshots`, counted while it decodes; it takes no lease).
    Snapshot,
    /// A bounded hold: REST `live/start` or the MQTT stream switch.
    Hold,
    /// Any other lease ([`CameraStream::lease`](crate::media::CameraStream::lease)).
    Other,
}

impl ViewerKind {
    /// Every kind, in the order of [`ViewerKind::index`].
    pub const ALL: [ViewerKind; 5] = [
        ViewerKind::Rtsp,
        ViewerKind::Whep,
        ViewerKind::Snapshot,
        ViewerKind::Hold,
        ViewerKind::Other,
    ];

    /// `rtsp`, `whep`, `snapshot`, `hold` or `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            ViewerKind::Rtsp => "rtsp",
            ViewerKind::Whep => "whep",
            ViewerKind::Snapshot => "snapshot",
            ViewerKind::Hold => "hold",
            ViewerKind::Other => "other",
        }
    }

    pub(super) fn index(self) -> usize {
        self as usize
    }
}

/// Leases held, by [`ViewerKind`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ViewerCounts {
    /// RTSP medias.
    pub rtsp: usize,
    /// Browser (WHEP) sessions.
    pub whep: usize,
    /// Live snapshots in progress.
    pub snapshot: usize,
    /// Bounded holds (REST `live/start`, MQTT switch).
    pub hold: usize,
    /// Other leases.
    pub other: usize,
}

impl ViewerCounts {
    /// The count of `kind`.
    pub fn get(&self, kind: ViewerKind) -> usize {
        match kind {
            ViewerKind::Rtsp => self.rtsp,
            ViewerKind::Whep => self.whep,
            ViewerKind::Snapshot => self.snapshot,
            ViewerKind::Hold => self.hold,
            ViewerKind::Other => self.other,
        }
    }

    pub(super) fn set(&mut self, kind: ViewerKind, n: usize) {
        *match kind {
            ViewerKind::Rtsp => &mut self.rtsp,
            ViewerKind::Whep => &mut self.whep,
            ViewerKind::Snapshot => &mut self.snapshot,
            ViewerKind::Hold => &mut self.hold,
            ViewerKind::Other => &mut self.other,
        } = n;
    }
}

/// One subscriber's delivery, in [`LiveStats::viewer_streams`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ViewerStats {
    /// Who reads.
    pub kind: ViewerKind,
    /// Seconds since it subscribed.
    pub age_s: f64,
    /// Bits per second delivered (over the last [`RATE_WINDOW`](super::RATE_WINDOW) or more).
    pub bitrate_bps: f64,
    /// Video and audio frames per second delivered.
    pub fps: f64,
    /// Frames delivered.
    pub frames: u64,
    /// Payload bytes delivered.
    pub bytes: u64,
    /// Frames it missed by falling behind (lag, then skipped to a key frame).
    pub drops: u64,
}

/// A camera stream's statistics (REST `stats`, `/metrics`, MQTT attributes).
/// Counters are totals since the daemon started; rates and the session fields
/// describe the stream now (zero / `null` when it is not streaming).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LiveStats {
    /// Whether a session is current.
    pub streaming: bool,
    /// `h264` or `h265` once the stream's parameters are known.
    pub codec: Option<&'static str>,
    /// RFC 6381 codec string, e.g. `avc1.64001f`, `hvc1.1.6.L93.B0`.
    pub codec_string: Option<String>,
    /// Displayed width in pixels.
    pub width: Option<u32>,
    /// Displayed height in pixels.
    pub height: Option<u32>,
    /// Ingress bits per second, video and audio payload.
    pub bitrate_bps: f64,
    /// Ingress video frames per second.
    pub fps: f64,
    /// Mean seconds between key frames since streaming started (at least two).
    pub keyframe_interval_s: Option<f64>,
    /// Video frames received.
    pub video_frames: u64,
    /// Video payload bytes received.
    pub video_bytes: u64,
    /// Audio payload bytes received.
    pub audio_bytes: u64,
    /// Key frames received.
    pub keyframes: u64,
    /// RTP packets received (video), when the source counts them.
    pub packets_received: u64,
    /// RTP packets lost (sequence gaps).
    pub packets_lost: u64,
    /// NACK messages sent to the camera.
    pub nacks_sent: u64,
    /// PLI messages sent to the camera.
    pub plis_sent: u64,
    /// Seconds since the current session started.
    pub session_age_s: Option<f64>,
    /// Sessions that became current.
    pub sessions: u64,
    /// Sessions that replaced a running one before its cap (seamless renewals).
    pub renewals: u64,
    /// Leases held, by kind.
    pub viewers: ViewerCounts,
    /// Per subscriber delivery (an RTSP media counts once however many clients share it).
    pub viewer_streams: Vec<ViewerStats>,
}
