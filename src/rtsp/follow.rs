//! The follower: keeps the RTSP mount table in step with the camera directory.
//!
//! Each batch of [`crate::cameras::Change`]s is posted to the `rtsp-glib`
//! thread, where [`Mounts::apply`] runs (see `super::mounts`). Once the
//! directory's first load finished (or failed) and every camera it listed has
//! been posted, [`FirstLoad::set_done`] is posted behind those batches: GLib
//! runs posted closures in order, so DESCRIBEs waiting for the first load find
//! the paths mounted.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use gst::glib;
use gstreamer as gst;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::gate::FirstLoad;
use super::mounts::Mounts;
use crate::base::CameraId;
use crate::cameras::{Change, Changes, Snapshot};

/// Ring ids of the cameras posted so far, to tell when the mounts caught up
/// with a snapshot.
#[derive(Default)]
pub(super) struct Posted(BTreeSet<CameraId>);

impl Posted {
    /// Records a batch about to be applied.
    pub(super) fn record(&mut self, batch: &[Change]) {
        for c in batch {
            match c {
                Change::Added(e) => {
                    self.0.insert(e.camera.id);
                }
                Change::Removed(e) => {
                    self.0.remove(&e.camera.id);
                }
                Change::Updated { .. } => {}
            }
        }
    }

    /// Whether `snap` is a finished first load (or a failed one) whose every
    /// camera has been posted.
    pub(super) fn covers(&self, snap: &Snapshot) -> bool {
        (snap.loaded || snap.last_error.is_some())
            && snap.cameras.iter().all(|e| self.0.contains(&e.camera.id))
    }
}

/// What the follower task works with.
pub(super) struct Follower {
    /// Directory changes (the first batch was applied at start-up).
    pub(super) changes: Changes,
    /// The directory's snapshots, for its load state.
    pub(super) dir: watch::Receiver<Snapshot>,
    /// The server's GLib context (where `mounts` is applied).
    pub(super) glib_ctx: glib::MainContext,
    /// The mount table.
    pub(super) mounts: Mounts,
    /// Cameras posted so far.
    pub(super) posted: Posted,
    /// Set once the first load is mounted.
    pub(super) first_load: Arc<FirstLoad>,
}

impl Follower {
    /// Posts each batch of directory changes to the GLib thread. Ends when
    /// `cancel` fires or the directory stops.
    pub(super) async fn run(self, cancel: CancellationToken) {
        let Follower {
            mut changes,
            mut dir,
            glib_ctx,
            mounts,
            mut posted,
            first_load,
        } = self;
        // Locked only on the GLib thread (by the closures posted there), one at a time.
        let mounts = Arc::new(Mutex::new(mounts));
        let mut dir_open = true;
        loop {
            if !first_load.is_done() && (!dir_open || posted.covers(&dir.borrow())) {
                let fl = first_load.clone();
                glib_ctx.invoke(move || fl.set_done());
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                b = changes.next() => {
                    let Some(batch) = b else { break };
                    posted.record(&batch);
                    let mounts = mounts.clone();
                    glib_ctx.invoke(move || {
                        mounts
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .apply(batch);
                    });
                }
                r = dir.changed(), if dir_open && !first_load.is_done() => {
                    dir_open = r.is_ok();
                }
            }
        }
        // Nothing more will be mounted: nobody waits for it.
        first_load.set_done();
        debug!("RTSP mounts stop following the camera directory");
    }
}
