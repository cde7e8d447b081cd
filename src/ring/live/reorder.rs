//! A small reorder buffer in front of the video depacketizer. When a video
//! packet is missing, the stack NACKs it and Ring retransmits it a round trip
//! later; the packets after the gap wait here (up to [`Reorder::new`]'s
//! `max_wait` or `max_held` packets) so the retransmission fills the gap
//! instead of arriving too late for the depacketizer, which would drop the
//! frame and wait for the next key frame. In-order packets pass at once: the
//! buffer adds latency only while a packet is missing.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Packets by extended sequence number, released in order.
pub(crate) struct Reorder<T> {
    next: Option<u64>,
    held: BTreeMap<u64, T>,
    ready: VecDeque<T>,
    gap_since: Option<Instant>,
    max_wait: Duration,
    max_held: usize,
}

impl<T> Reorder<T> {
    /// A buffer that waits at most `max_wait` for a missing packet, and holds
    /// at most `max_held` packets behind it.
    pub(crate) fn new(max_wait: Duration, max_held: usize) -> Self {
        Reorder {
            next: None,
            held: BTreeMap::new(),
            ready: VecDeque::new(),
            gap_since: None,
            max_wait,
            max_held: max_held.max(1),
        }
    }

    /// Adds packet `seq` (extended, so it never wraps). Packets older than the
    /// next one due (duplicates, or given up on) are dropped.
    pub(crate) fn push(&mut self, seq: u64, item: T, now: Instant) {
        let next = *self.next.get_or_insert(seq);
        if seq < next {
            return;
        }
        if seq == next {
            self.ready.push_back(item);
            self.next = Some(seq + 1);
            self.release();
        } else {
            self.held.entry(seq).or_insert(item);
            self.gap_since.get_or_insert(now);
            if self.held.len() > self.max_held {
                self.skip(now);
            }
        }
    }

    /// Gives up on a missing packet that has waited `max_wait`: the packets
    /// after it are released (the depacketizer then sees the gap).
    pub(crate) fn expire(&mut self, now: Instant) {
        if self.deadline().is_some_and(|d| d <= now) {
            self.skip(now);
        }
    }

    /// When [`Self::expire`] has work, if a packet is missing.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.gap_since.map(|t| t + self.max_wait)
    }

    /// The next packet ready in order.
    pub(crate) fn pop(&mut self) -> Option<T> {
        self.ready.pop_front()
    }

    /// Moves past the current gap to the oldest held packet.
    fn skip(&mut self, now: Instant) {
        if let Some((&first, _)) = self.held.first_key_value() {
            self.next = Some(first);
            self.release();
            self.gap_since = (!self.held.is_empty()).then_some(now);
        }
    }

    /// Moves held packets that are now in order to `ready`.
    fn release(&mut self) {
        while let Some(next) = self.next {
            let Some(item) = self.held.remove(&next) else {
                break;
            };
            self.ready.push_back(item);
            self.next = Some(next + 1);
        }
        if self.held.is_empty() {
            self.gap_since = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(r: &mut Reorder<u64>) -> Vec<u64> {
        std::iter::from_fn(|| r.pop()).collect()
    }

    #[test]
    fn in_order_passes_and_a_late_packet_fills_its_gap() {
        let t0 = Instant::now();
        let mut r = Reorder::new(Duration::from_millis(100), 64);
        for s in [10, 11] {
            r.push(s, s, t0);
        }
        assert_eq!(drain(&mut r), vec![10, 11]);
        // 12 is lost; 13 and 14 wait for it.
        r.push(13, 13, t0);
        r.push(14, 14, t0);
        assert_eq!(drain(&mut r), Vec::<u64>::new());
        assert_eq!(r.deadline(), Some(t0 + Duration::from_millis(100)));
        r.push(12, 12, t0 + Duration::from_millis(30));
        assert_eq!(drain(&mut r), vec![12, 13, 14]);
        assert_eq!(r.deadline(), None);
        // Duplicates and old packets are dropped.
        r.push(13, 13, t0);
        assert_eq!(drain(&mut r), Vec::<u64>::new());
    }

    #[test]
    fn gives_up_after_the_wait_or_when_full() {
        let t0 = Instant::now();
        let mut r = Reorder::new(Duration::from_millis(100), 3);
        r.push(1, 1, t0);
        r.push(3, 3, t0);
        r.expire(t0 + Duration::from_millis(99));
        assert_eq!(drain(&mut r), vec![1]);
        r.expire(t0 + Duration::from_millis(100));
        assert_eq!(drain(&mut r), vec![3]);
        // The retransmission of 2 comes too late: dropped.
        r.push(2, 2, t0);
        assert_eq!(drain(&mut r), Vec::<u64>::new());

        // Full: 5 is missing, 6..=9 overflow the three places.
        for s in [6, 7, 8, 9] {
            r.push(s, s, t0);
        }
        assert_eq!(drain(&mut r), vec![6, 7, 8, 9]);
        // Two gaps: the second waits anew after the first is skipped.
        r.push(11, 11, t0);
        r.push(13, 13, t0);
        let t1 = t0 + Duration::from_millis(100);
        r.expire(t1);
        assert_eq!(drain(&mut r), vec![11]);
        assert_eq!(r.deadline(), Some(t1 + Duration::from_millis(100)));
        r.push(12, 12, t1);
        assert_eq!(drain(&mut r), vec![12, 13]);
    }
}
