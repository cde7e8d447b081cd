//! [`LoginLimiter`]: sliding-window limits on login attempts, per client IP and
//! for the whole daemon, so nobody can guess passwords or 2FA codes through
//! ring-bridge (or make Ring send a flood of codes). Used for Ring logins from
//! the console and for wrong console passwords (`web::access`).
//!
//! Every attempt counts, whatever Ring answers: a normal login with a 2FA code
//! takes two. The limiter lives outside a daemon run, so an in-process restart
//! (after a login or unlink) does not reset it. Time is `tokio::time::Instant`,
//! so tests run on paused time.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// Limits of a [`LoginLimiter`].
#[derive(Clone, Copy, Debug)]
pub struct LoginLimits {
    /// Attempts one client IP may make per `window`.
    pub per_ip: usize,
    /// Attempts all clients together may make per `window`.
    pub global: usize,
    /// The sliding window.
    pub window: Duration,
}

impl Default for LoginLimits {
    /// 5 per IP and 20 in total per 5 minutes.
    fn default() -> Self {
        LoginLimits {
            per_ip: 5,
            global: 20,
            window: Duration::from_secs(300),
        }
    }
}

/// Counts login attempts; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct LoginLimiter {
    limits: LoginLimits,
    inner: Mutex<Windows>,
}

#[derive(Debug, Default)]
struct Windows {
    global: VecDeque<Instant>,
    per_ip: HashMap<IpAddr, VecDeque<Instant>>,
}

/// Drops instants older than `window` and answers how long until a slot frees
/// up when `q` already holds `limit` attempts.
fn wait_in(q: &mut VecDeque<Instant>, limit: usize, window: Duration, now: Instant) -> Duration {
    while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
        q.pop_front();
    }
    match q.front() {
        Some(oldest) if q.len() >= limit => window.saturating_sub(now.duration_since(*oldest)),
        _ => Duration::ZERO,
    }
}

/// `Ok` without a wait, else `Err` with the wait in whole seconds, at least one.
fn verdict(wait: Duration) -> Result<(), Duration> {
    if wait.is_zero() {
        Ok(())
    } else {
        Err(Duration::from_secs(
            wait.as_secs_f64().ceil().max(1.0) as u64
        ))
    }
}

impl Windows {
    /// How long `ip` must wait when it may hold `per_ip` attempts (and all
    /// clients together `global`, when given) in the window.
    fn wait(
        &mut self,
        ip: IpAddr,
        per_ip: usize,
        global: Option<usize>,
        window: Duration,
        now: Instant,
    ) -> Duration {
        let ip_wait = self
            .per_ip
            .get_mut(&ip)
            .map_or(Duration::ZERO, |q| wait_in(q, per_ip, window, now));
        let global_wait = global.map_or(Duration::ZERO, |g| {
            wait_in(&mut self.global, g, window, now)
        });
        ip_wait.max(global_wait)
    }
}

impl LoginLimiter {
    /// A limiter with `limits`.
    pub fn new(limits: LoginLimits) -> Self {
        LoginLimiter {
            limits,
            inner: Mutex::default(),
        }
    }

    /// Whether an attempt from `ip` would be refused now (without recording
    /// one): `Err` with the wait, as [`LoginLimiter::try_acquire`].
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.attempt(ip, false)
    }

    /// Records an attempt from `ip`, or refuses it with the time after which a
    /// retry can succeed (rounded up to whole seconds, at least 1 s). A refused
    /// attempt is not recorded.
    pub fn try_acquire(&self, ip: IpAddr) -> Result<(), Duration> {
        self.attempt(ip, true)
    }

    /// Whether `ip` alone is over its per-IP limit (the global count is not
    /// looked at): `Err` with the wait.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let LoginLimits { per_ip, window, .. } = self.limits;
        verdict(self.pruned(now).wait(ip, per_ip, None, window, now))
    }

    /// Records a failed attempt from `ip`, always (unlike
    /// [`LoginLimiter::try_acquire`]), and answers whether `ip` or everyone
    /// together is now over a limit: `Err` with the wait. For checks that must
    /// never refuse a right answer: the caller compares first, then records.
    pub fn record_failure(&self, ip: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let LoginLimits {
            per_ip,
            global,
            window,
        } = self.limits;
        let mut w = self.pruned(now);
        w.global.push_back(now);
        // Only the newest `global + 1` matter for the wait; keep memory bounded.
        while w.global.len() > global.saturating_add(1) {
            w.global.pop_front();
        }
        w.per_ip.entry(ip).or_default().push_back(now);
        // Over a limit once this failure makes one more than it allows.
        verdict(w.wait(
            ip,
            per_ip.saturating_add(1),
            Some(global.saturating_add(1)),
            window,
            now,
        ))
    }

    /// The windows, locked, without the clients whose newest attempt has left
    /// the window.
    fn pruned(&self, now: Instant) -> MutexGuard<'_, Windows> {
        let window = self.limits.window;
        let mut w = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        w.per_ip
            .retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        w
    }

    fn attempt(&self, ip: IpAddr, record: bool) -> Result<(), Duration> {
        let now = Instant::now();
        let LoginLimits {
            per_ip,
            global,
            window,
        } = self.limits;
        let mut w = self.pruned(now);
        verdict(w.wait(ip, per_ip, Some(global), window, now))?;
        if !record {
            return Ok(());
        }
        w.global.push_back(now);
        w.per_ip.entry(ip).or_default().push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 168, 1, last])
    }

    #[tokio::test(start_paused = true)]
    async fn per_ip_limit_then_window_slides() {
        let l = LoginLimiter::new(LoginLimits::default());
        for _ in 0..5 {
            l.try_acquire(ip(1)).unwrap();
            tokio::time::advance(Duration::from_secs(10)).await;
        }
        // The oldest attempt was 50 s ago: a slot frees in 250 s.
        assert_eq!(l.try_acquire(ip(1)), Err(Duration::from_secs(250)));
        l.try_acquire(ip(2))
            .expect("another client is not affected");
        tokio::time::advance(Duration::from_secs(250)).await;
        l.try_acquire(ip(1))
            .expect("the oldest attempt left the window");
        assert!(
            l.try_acquire(ip(1)).is_err(),
            "four still in the window + one"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn check_peeks_without_recording() {
        let l = LoginLimiter::new(LoginLimits {
            per_ip: 2,
            global: 10,
            window: Duration::from_secs(60),
        });
        for _ in 0..5 {
            l.check(ip(1)).unwrap();
        }
        l.try_acquire(ip(1)).unwrap();
        l.try_acquire(ip(1)).unwrap();
        assert_eq!(l.check(ip(1)), Err(Duration::from_secs(60)));
        l.check(ip(2)).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn global_cap_across_clients() {
        let l = LoginLimiter::new(LoginLimits {
            per_ip: 2,
            global: 3,
            window: Duration::from_secs(60),
        });
        l.try_acquire(ip(1)).unwrap();
        l.try_acquire(ip(2)).unwrap();
        l.try_acquire(ip(3)).unwrap();
        let wait = l.try_acquire(ip(4)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(60));
        tokio::time::advance(Duration::from_millis(59_500)).await;
        assert_eq!(
            l.try_acquire(ip(4)),
            Err(Duration::from_secs(1)),
            "rounded up"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        l.try_acquire(ip(4)).unwrap();
    }
}
