//! [`DescribeGate`]: counts the RTSP clients waiting for one camera to start
//! (see `super::describe`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

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

#[cfg(test)]
mod tests {
    use super::*;

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
