//! One reusable wake-up for a task's `select!`: the `Sleep` is kept and only
//! reset when the deadline moves, so a loop that re-arms it on every turn costs
//! no timer registration when nothing changed. Used by the str0m pumps (the
//! stack's next timeout) and the hub's supervisor (deadlines that move on with
//! every frame).
//!
//! Moving a deadline *later* replaces the `Sleep` instead of resetting it. Tokio
//! resets a later deadline in place: its timer wheel keeps the entry at the old
//! instant, and the runtime wakes there only to find it not due and file it
//! again. A pump that pushes its deadline back with every packet (its deadline
//! is met by the next packet, not by the timer) paid one such empty wake-up per
//! deadline: about 17 a second on a held Ring call, a sixth of its wake-ups.
//! Replacing it removes the old entry from the wheel (one lock, no wake-up).

use std::pin::Pin;
use std::time::Instant;

/// See the module docs. Unarmed until [`Timer::set`] or [`Timer::set_no_later`];
/// disarmed again when it fires.
#[derive(Debug)]
pub struct Timer {
    deadline: Option<Instant>,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Default for Timer {
    fn default() -> Self {
        Timer {
            deadline: None,
            sleep: Box::pin(tokio::time::sleep_until(Instant::now().into())),
        }
    }
}

impl Timer {
    /// Wakes at `at`.
    pub fn set(&mut self, at: Instant) {
        if self.deadline != Some(at) {
            self.arm(at);
        }
    }

    /// Wakes at `at` or earlier: moves the deadline only earlier (or arms an
    /// unarmed timer). For a deadline that keeps moving later, such as a stall
    /// deadline pushed back by every frame; the caller re-checks on waking.
    pub fn set_no_later(&mut self, at: Instant) {
        if self.deadline.is_none_or(|d| at < d) {
            self.arm(at);
        }
    }

    fn arm(&mut self, at: Instant) {
        // Later: a new entry (see the module docs); earlier or unarmed: tokio
        // files the reset entry again itself.
        if self.deadline.is_some_and(|d| at > d) {
            self.sleep = Box::pin(tokio::time::sleep_until(at.into()));
        } else {
            self.sleep.as_mut().reset(at.into());
        }
        self.deadline = Some(at);
    }

    /// Waits for the deadline (at once when it has passed; never while
    /// unarmed), then disarms.
    pub async fn wait(&mut self) {
        if self.deadline.is_none() {
            return std::future::pending().await;
        }
        self.sleep.as_mut().await;
        self.deadline = None;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn set_no_later_only_moves_earlier_and_a_fired_timer_disarms() {
        // The paused clock: tokio's `Instant`, converted for the timer.
        let now = || tokio::time::Instant::now();
        let mut t = Timer::default();
        let fired = tokio::time::timeout(Duration::from_secs(60), t.wait()).await;
        assert!(fired.is_err(), "an unarmed timer never fires");
        let start = now();
        let at = |s| (start + Duration::from_secs(s)).into_std();
        t.set_no_later(at(5));
        t.set_no_later(at(9)); // later: stays at 5 s
        t.wait().await;
        assert_eq!(now() - start, Duration::from_secs(5));
        // Fired, so disarmed: a later deadline arms it again, and `set` moves
        // it either way.
        t.set_no_later(at(9));
        t.set(at(7));
        t.wait().await;
        assert_eq!(now() - start, Duration::from_secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn set_moves_the_deadline_both_ways() {
        let now = || tokio::time::Instant::now();
        let mut t = Timer::default();
        let start = now();
        let at = |s| (start + Duration::from_secs(s)).into_std();
        // Later: the `Sleep` is replaced; the old instant must not fire.
        t.set(at(5));
        t.set(at(9));
        t.wait().await;
        assert_eq!(now() - start, Duration::from_secs(9));
        // Earlier: reset in place.
        t.set(at(20));
        t.set(at(12));
        t.wait().await;
        assert_eq!(now() - start, Duration::from_secs(12));
    }
}
