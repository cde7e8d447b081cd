//! Which GStreamer elements each part of ring-bridge needs, and a check that
//! they are installed.
//!
//! [`REQUIRED`] is the one list of elements the code builds pipelines from
//! (a test in `tests/deps_guard.rs` parses every launch string and element
//! factory name in the sources and fails on one that is not listed here, and
//! checks that the Debian package named for each element really provides it
//! and is installed by `scripts/setup-deps.sh` and the container images).
//!
//! [`check`] looks each element up in the GStreamer registry. `ring-bridge
//! run`, `sim`, `check-config` and `doctor` call it at start-up, so a missing
//! plugin is one clear line naming the element, what it breaks and the package
//! that provides it — not a failure deep inside a pipeline later.

use std::fmt;

use gstreamer as gst;

/// A part of ring-bridge that builds GStreamer pipelines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// The RTSP output (`rtsp`): appsrc → RTP payloaders; recorded events
    /// demuxed from MP4 (qtdemux → appsink).
    Rtsp,
    /// Snapshots from a live key frame (`snapshot::decode`): H.264 → JPEG.
    Snapshot,
    /// Talkback into a PCMU Ring session (`codec::opus` decoder).
    Talkback,
    /// Announcements (`codec::clip`): decoding uploaded, fetched or spoken
    /// audio and encoding it to Opus.
    Announce,
    /// The built-in simulator (demo mode, `ring-bridge sim`, the bench): the
    /// generated live clip, recordings and snapshots.
    Simulator,
    /// Only the test suite (decoding generated recordings back).
    Tests,
}

impl Part {
    /// Every part, in the order reports list them.
    pub const ALL: [Part; 6] = [
        Part::Rtsp,
        Part::Snapshot,
        Part::Talkback,
        Part::Announce,
        Part::Simulator,
        Part::Tests,
    ];

    /// What stops working when this part's elements are missing.
    pub fn breaks(self) -> &'static str {
        match self {
            Part::Rtsp => "RTSP streams",
            Part::Snapshot => "snapshots from live video",
            Part::Talkback => "talkback to cameras that use PCMU",
            Part::Announce => "announcements (clips and speech on the camera speaker)",
            Part::Simulator => "the built-in simulator (demo mode, `ring-bridge sim`, the bench)",
            Part::Tests => "the test suite",
        }
    }

    /// Whether the daemon needs this part at run time (and so the container
    /// images must carry its packages).
    pub fn runtime(self) -> bool {
        self != Part::Tests
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Rtsp => "rtsp",
            Part::Snapshot => "snapshot",
            Part::Talkback => "talkback",
            Part::Announce => "announce",
            Part::Simulator => "simulator",
            Part::Tests => "tests",
        })
    }
}

/// One GStreamer element factory ring-bridge uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    /// The element factory name, as in a launch string (`rtph264pay`).
    pub element: &'static str,
    /// The Debian 12 package whose plugin provides it.
    pub package: &'static str,
    /// The parts that use it.
    pub parts: &'static [Part],
}

const fn req(element: &'static str, package: &'static str, parts: &'static [Part]) -> Requirement {
    Requirement {
        element,
        package,
        parts,
    }
}

use Part::{Announce, Rtsp, Simulator, Snapshot, Talkback, Tests};

const CORE: &str = "libgstreamer1.0-0";
const BASE: &str = "gstreamer1.0-plugins-base";
const GOOD: &str = "gstreamer1.0-plugins-good";
const BAD: &str = "gstreamer1.0-plugins-bad";
const UGLY: &str = "gstreamer1.0-plugins-ugly";
const LIBAV: &str = "gstreamer1.0-libav";
/// Debian puts the pango text overlays here (they also need a font:
/// `fonts-dejavu-core`).
const X: &str = "gstreamer1.0-x";
/// libnice's ICE elements, which `webrtcbin` uses.
const NICE: &str = "gstreamer1.0-nice";

/// Every element the code uses, with its Debian package and its users.
pub const REQUIRED: &[Requirement] = &[
    // Plumbing.
    req(
        "appsrc",
        BASE,
        &[Rtsp, Snapshot, Talkback, Announce, Simulator],
    ),
    req(
        "appsink",
        BASE,
        &[Rtsp, Snapshot, Talkback, Announce, Simulator],
    ),
    req("tee", CORE, &[Rtsp]),
    req("queue", CORE, &[Rtsp, Simulator, Tests]),
    req("filesrc", CORE, &[Simulator]),
    req("filesink", CORE, &[Simulator]),
    req("fakesink", CORE, &[Tests]),
    // RTP payloaders (no transcoding; live H.264/H.265 video uses `rtsp::pay`,
    // recorded events `rtph264pay`).
    req("rtph264pay", GOOD, &[Rtsp]),
    req("rtpopuspay", GOOD, &[Rtsp]),
    // Recorded events: AAC from Ring's MP4 (RFC 3640).
    req("rtpmp4gpay", GOOD, &[Rtsp]),
    // Video decode → JPEG.
    req("h264parse", BAD, &[Snapshot, Simulator]),
    req("avdec_h264", LIBAV, &[Snapshot, Tests]),
    req("h265parse", BAD, &[Snapshot]),
    req("avdec_h265", LIBAV, &[Snapshot]),
    req("videoconvert", BASE, &[Snapshot, Simulator]),
    req("videoscale", BASE, &[Snapshot, Simulator]),
    req("jpegenc", GOOD, &[Snapshot, Simulator]),
    // Audio.
    req("opusdec", BASE, &[Talkback, Announce]),
    req("audioconvert", BASE, &[Talkback, Announce]),
    req("audioresample", BASE, &[Talkback, Announce]),
    req("opusenc", BASE, &[Announce, Simulator]),
    // Announcement files: what `decodebin` picks for WAV, MP3, Ogg Vorbis/Opus.
    req("typefind", CORE, &[Announce]),
    req("wavparse", GOOD, &[Announce]),
    req("mpegaudioparse", GOOD, &[Announce]),
    req("mpg123audiodec", GOOD, &[Announce]),
    req("oggdemux", BASE, &[Announce]),
    req("vorbisdec", BASE, &[Announce]),
    req("opusparse", BAD, &[Announce]),
    req("audiotestsrc", BASE, &[Simulator]),
    req("voaacenc", BAD, &[Simulator]),
    req("aacparse", GOOD, &[Simulator, Tests]),
    req("avdec_aac", LIBAV, &[Tests]),
    // The simulator's generated media.
    req("videotestsrc", BASE, &[Simulator]),
    req("textoverlay", X, &[Simulator]),
    req("clockoverlay", X, &[Simulator]),
    req("timeoverlay", X, &[Simulator]),
    req("x264enc", UGLY, &[Simulator]),
    req("x265enc", BAD, &[Simulator, Tests]),
    req("mp4mux", GOOD, &[Simulator]),
    req("qtdemux", GOOD, &[Rtsp, Simulator]),
    req("decodebin", BASE, &[Announce, Simulator]),
    // The GStreamer WHEP player of the tests (`tests/whep_player/gst_player.py`).
    req("webrtcbin", BAD, &[Tests]),
    req("nicesrc", NICE, &[Tests]),
    req("nicesink", NICE, &[Tests]),
    req("dtlssrtpdec", BAD, &[Tests]),
    req("srtpdec", BAD, &[Tests]),
    req("rtph264depay", GOOD, &[Tests]),
    req("rtpopusdepay", GOOD, &[Tests]),
];

/// The requirement for `element`, if ring-bridge uses it.
pub fn requirement(element: &str) -> Option<&'static Requirement> {
    REQUIRED.iter().find(|r| r.element == element)
}

/// One missing element, as reported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Missing {
    /// The element factory name.
    pub element: &'static str,
    /// The Debian package that provides it.
    pub package: &'static str,
}

/// The result of [`check`]: which elements are there, which are not.
#[derive(Debug, Clone)]
pub struct ElementReport {
    /// Whether GStreamer itself could be initialised (when not, every
    /// element counts as missing).
    pub gstreamer: Result<(), String>,
    /// Each requirement and whether its element was found.
    pub results: Vec<(&'static Requirement, bool)>,
}

impl ElementReport {
    /// The missing elements a part needs.
    pub fn missing_for(&self, part: Part) -> Vec<Missing> {
        self.results
            .iter()
            .filter(|(r, found)| !found && r.parts.contains(&part))
            .map(|(r, _)| Missing {
                element: r.element,
                package: r.package,
            })
            .collect()
    }

    /// Which of `parts` cannot work, each with what it misses.
    pub fn degraded(&self, parts: &[Part]) -> Vec<Degraded> {
        parts
            .iter()
            .copied()
            .filter_map(|part| {
                let missing = self.missing_for(part);
                (!missing.is_empty()).then(|| Degraded {
                    part,
                    breaks: part.breaks(),
                    missing,
                })
            })
            .collect()
    }

    /// One line per missing element a part needs: the element, what it
    /// breaks and the package to install.
    pub fn lines_for(&self, part: Part) -> Vec<String> {
        self.missing_for(part)
            .iter()
            .map(|m| {
                format!(
                    "GStreamer element `{}` is missing: {} cannot work; install the Debian package {}",
                    m.element,
                    part.breaks(),
                    m.package
                )
            })
            .collect()
    }
}

/// The parts a daemon serving a Ring account uses (the simulator's are
/// checked only where it runs).
pub const DAEMON_PARTS: [Part; 4] = [Part::Rtsp, Part::Snapshot, Part::Talkback, Part::Announce];

/// A part that cannot work, for `/healthz` and the console.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Degraded {
    /// The part.
    pub part: Part,
    /// What does not work.
    pub breaks: &'static str,
    /// The elements it lacks.
    pub missing: Vec<Missing>,
}

/// Looks every element of [`REQUIRED`] up in the GStreamer registry.
/// Initialises GStreamer (cheap after the first call); does not build any
/// pipeline.
pub fn check() -> ElementReport {
    let gstreamer = gst::init().map_err(|e| e.to_string());
    let results = REQUIRED
        .iter()
        .map(|r| {
            let found = gstreamer.is_ok() && gst::ElementFactory::find(r.element).is_some();
            (r, found)
        })
        .collect();
    ElementReport { gstreamer, results }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_element_listed_once() {
        let mut names: Vec<_> = REQUIRED.iter().map(|r| r.element).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "an element is listed twice");
        assert!(REQUIRED.iter().all(|r| !r.parts.is_empty()));
    }

    #[test]
    fn missing_elements_are_reported_per_part() {
        let report = ElementReport {
            gstreamer: Ok(()),
            results: REQUIRED
                .iter()
                .map(|r| (r, r.element != "textoverlay"))
                .collect(),
        };
        assert!(report.missing_for(Part::Rtsp).is_empty());
        let sim = report.lines_for(Part::Simulator);
        assert_eq!(sim.len(), 1);
        assert!(sim[0].contains("`textoverlay`") && sim[0].contains("gstreamer1.0-x"));
        let degraded = report.degraded(&Part::ALL);
        assert_eq!(degraded.len(), 1);
        assert_eq!(degraded[0].part, Part::Simulator);
    }

    #[test]
    fn this_machine_has_every_element() {
        let report = check();
        let missing: Vec<_> = report.results.iter().filter(|(_, f)| !f).collect();
        assert!(
            missing.is_empty(),
            "missing here: {missing:?} (run scripts/setup-deps.sh test)"
        );
    }
}
