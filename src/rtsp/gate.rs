//! [`DescribeGate`]: counts the RTSP clients waiting for one camera to start;
//! [`FirstLoad`]: lets DESCRIBEs of paths not mounted yet wait for the camera
//! directory's first load (see `super::describe`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::base::log_throttle::LogThrottle;

/// Counts the clients waiting for one camera.
pub(crate) struct DescribeGate {
    waiting: AtomicUsize,
    pub(super) max: usize,
    /// Logs the first refusal per camera.
    pub(super) log: LogThrottle,
}

/// One place in a [`DescribeGate`], given back on drop.
pub(crate) struct Place<'a>(&'a DescribeGate);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

impl DescribeGate {
    /// A gate letting `max` (at least 1) clients wait at once.
    pub(crate) fn new(max: usize) -> Self {
        DescribeGate {
            waiting: AtomicUsize::new(0),
            max: max.max(1),
            log: LogThrottle::new(Duration::from_secs(600)),
        }
    }

    /// Takes a place, or `None` when all are taken.
    pub(crate) fn enter(&self) -> Option<Place<'_>> {
        self.waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Place(self))
    }

    /// Clients waiting right now.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }
}

/// Whether the mount table has caught up with the camera directory's first
/// load (successful or failed). Until then a DESCRIBE of a path that is not
/// mounted waits for it (bounded) instead of getting 404: an NVR that connects
/// while ring-bridge starts finds its camera.
pub(crate) struct FirstLoad {
    done: Mutex<bool>,
    changed: Condvar,
    /// The clients that may wait at once for the first load.
    pub(super) gate: DescribeGate,
    /// Longest wait.
    timeout: Duration,
}

impl FirstLoad {
    /// Not done yet; at most `max_waiters` wait at once, each at most `timeout`.
    pub(crate) fn new(max_waiters: usize, timeout: Duration) -> Self {
        FirstLoad {
            done: Mutex::new(false),
            changed: Condvar::new(),
            gate: DescribeGate::new(max_waiters),
            timeout,
        }
    }

    /// The mounts of the first load are in place; wakes every waiter.
    pub(crate) fn set_done(&self) {
        *self.done.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.changed.notify_all();
    }

    /// Whether [`FirstLoad::set_done`] was called.
    pub(crate) fn is_done(&self) -> bool {
        *self.done.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Blocks until done (`true`), the timeout, or `gone()` (checked every
    /// `check`) says the client left (`false`).
    pub(crate) fn wait(&self, check: Duration, gone: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + self.timeout;
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        while !*done {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || gone() {
                return false;
            }
            done = self
                .changed
                .wait_timeout(done, left.min(check))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_load_waiters_wake_when_done_or_give_up() {
        let fl = std::sync::Arc::new(FirstLoad::new(2, Duration::from_secs(30)));
        let waiter = {
            let fl = fl.clone();
            std::thread::spawn(move || fl.wait(Duration::from_millis(20), || false))
        };
        assert!(!fl.is_done());
        fl.set_done();
        assert!(waiter.join().unwrap(), "woken by set_done");
        assert!(fl.wait(Duration::from_millis(20), || true), "done: no wait");

        let fl = FirstLoad::new(2, Duration::from_secs(30));
        assert!(!fl.wait(Duration::from_millis(20), || true), "client gone");
        let fl = FirstLoad::new(2, Duration::from_millis(50));
        assert!(!fl.wait(Duration::from_millis(20), || false), "timed out");
    }

    #[test]
    fn the_gate_holds_max_places_and_gives_them_back() {
        let gate = DescribeGate::new(2);
        let a = gate.enter().expect("first");
        let b = gate.enter().expect("second");
        assert!(gate.enter().is_none(), "third is refused");
        assert_eq!(gate.waiting(), 2);
        drop(a);
        let c = gate.enter().expect("a place is free again");
        drop((b, c));
        assert_eq!(gate.waiting(), 0);
    }
}
