//! One step of driving a str0m instance, shared by the two pumps that own one
//! (the Ring call, `ring::live::pump`, and each browser session, `webrtc::pump`).
//!
//! What it adds to `Rtc::poll_output` is *when* the pump wakes for the stack's own
//! timers, which at one camera and one viewer were most of the daemon's wake-ups
//! (`docs/PERFORMANCE.md`, "Fewer wake-ups"):
//!
//! - A timeout that is already due is handled here at once and polling goes on.
//!   str0m asks for one after every packet it sends (its pacer and send streams
//!   want a `handle_timeout` before the next packet), so a frame of twelve packets
//!   used to cost twelve trips through the pump's `select!`.
//! - Once connected, a timeout that only produces feedback (receiver and sender
//!   reports, NACKs, TWCC, the paused-stream check, stats) is armed
//!   [`FEEDBACK_SLACK`] late. A pump that receives or sends media wakes for that
//!   anyway, typically every 20 ms (audio), and the due timeout is then handled
//!   on the way (first point); the late timer only fires on a quiet stream. So
//!   the NACK check (every 33 ms in str0m) stops being a wake-up of its own, and
//!   the slack is long enough that the timer wheel does not wake for it either
//!   (see the constant).
//!   Every other reason (ICE, DTLS, pacing, packetizing) is armed on time.

use std::time::{Duration, Instant};

use str0m::net::Transmit;
use str0m::{Event, Input, Output, Reason, Rtc, RtcError};

/// How late a feedback-only timer of a connected instance may fire.
///
/// While media flows (a packet at least every 67 ms: 15 fps video, 20 ms Opus)
/// every packet handles the due feedback on the way, so this timer is only a
/// guard for a stream that goes quiet, and it is pushed back with every packet.
/// It must stay out of the runtime's way meanwhile: tokio's timer wheel files a
/// deadline more than 64 ms ahead in a 64 ms slot and wakes at the slot's start
/// to file it finer. With 30 ms of slack the deadline kept crossing the next
/// slot boundary, one empty wake-up every 64 ms per pump; at 200 ms the slot
/// starts at least 100 ms ahead and the next packet moves the deadline first.
/// The cost: on a stream that stops, the last NACK or report goes out up to
/// 233 ms late (NACK interval 33 ms + this), instead of 63 ms.
pub const FEEDBACK_SLACK: Duration = Duration::from_millis(200);

/// Due timeouts handled in one [`poll`] call at most: a bound against a stack
/// that kept asking for a timeout in the past. The largest key frames are a few
/// hundred packets, each followed by one such timeout.
const MAX_INLINE_TIMEOUTS: u32 = 4096;

/// What one [`poll`] gave. As large as str0m's own `Output`, and like it only
/// returned, never stored.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Polled {
    /// A datagram to send.
    Transmit(Transmit),
    /// An event for the pump.
    Event(Event),
    /// Nothing more until this instant (or new input).
    Wait(Instant),
}

/// Whether a timeout of `reason` only produces feedback that may come a little
/// late without holding media back.
pub fn feedback_only(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::Feedback | Reason::Nack | Reason::Twcc | Reason::PauseCheck | Reason::Stats
    )
}

/// Polls `rtc` for its next output. Due timeouts are handled on the way; a future
/// one comes back as [`Polled::Wait`], [`FEEDBACK_SLACK`] later when `connected` and
/// it is [`feedback_only`].
pub fn poll(rtc: &mut Rtc, connected: bool) -> Result<Polled, RtcError> {
    let mut inline = 0;
    loop {
        match rtc.poll_output()? {
            Output::Timeout(at) => {
                let now = Instant::now();
                if at > now {
                    let late = connected && feedback_only(rtc.last_timeout_reason());
                    return Ok(Polled::Wait(if late { at + FEEDBACK_SLACK } else { at }));
                }
                if inline == MAX_INLINE_TIMEOUTS {
                    return Ok(Polled::Wait(now));
                }
                inline += 1;
                rtc.handle_input(Input::Timeout(now))?;
            }
            Output::Transmit(t) => return Ok(Polled::Transmit(t)),
            Output::Event(e) => return Ok(Polled::Event(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_feedback_reasons_may_wait() {
        for r in [
            Reason::Feedback,
            Reason::Nack,
            Reason::Twcc,
            Reason::PauseCheck,
        ] {
            assert!(feedback_only(r), "{r:?}");
        }
        for r in [
            Reason::Ice,
            Reason::DTLS,
            Reason::SendStream,
            Reason::Packetize,
            Reason::ReceiveReorder,
            Reason::NotHappening,
        ] {
            assert!(!feedback_only(r), "{r:?}");
        }
    }
}
