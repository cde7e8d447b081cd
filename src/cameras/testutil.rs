//! Test seam: a [`Directory`] fed by hand ([`fixed`] + [`DirectoryFeed`]) and a
//! ready-made camera ([`entry`]).
//!
//! Public (like `media::testutil`) so other modules' unit tests and the
//! integration tests can drive directory followers (RTSP mounts, MQTT) without
//! Ring. Not used by production code.

use tokio::sync::watch;

use super::directory::{Directory, Entry, Snapshot, with_slugs};
use crate::base::CameraId;
use crate::ring::Camera;

/// The sending side of a [`fixed`] directory. Dropping it ends the directory's
/// [`Changes`](super::Changes) streams, as a stopped refresh task does.
pub struct DirectoryFeed {
    tx: watch::Sender<Snapshot>,
}

impl DirectoryFeed {
    /// Replaces the camera list (a successful load).
    pub fn set(&self, cameras: Vec<Entry>) {
        self.tx.send_modify(|s| {
            s.cameras = cameras;
            s.loaded = true;
            s.last_error = None;
        });
    }

    /// Records a failed refresh (the list stays).
    pub fn fail(&self, err: &str) {
        self.tx.send_modify(|s| s.last_error = Some(err.to_owned()));
    }
}

/// A directory already loaded with `entries`, changed only through the feed.
pub fn fixed(entries: Vec<Entry>) -> (Directory, DirectoryFeed) {
    let (tx, rx) = watch::channel(Snapshot {
        cameras: entries,
        loaded: true,
        last_error: None,
    });
    (Directory::from_channel(rx), DirectoryFeed { tx })
}

/// An online, wired camera with Ring id `id` named `name`, its device id
/// `id` in 12 hex digits, and the slug the directory gives that name.
pub fn entry(id: u64, name: &str) -> Entry {
    let camera = Camera {
        id: CameraId::new(id),
        device_id: format!("{id:012x}"),
        name: name.to_owned(),
        kind: "cocoa_camera".into(),
        model: "Stick Up Cam".into(),
        location_id: "loc-1".into(),
        online: true,
        doorbell: false,
        battery: None,
        on_battery: false,
        has_light: false,
        has_siren: false,
        light_on: None,
        siren_on: None,
        motion_detection_enabled: true,
        live_view_disabled: false,
        recordings_enabled: false,
        shared: false,
        firmware: "1.0".into(),
        wifi_rssi_dbm: None,
        time_zone: None,
    };
    with_slugs(vec![camera])
        .pop()
        .expect("one camera in, one entry out")
}
