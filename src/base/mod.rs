//! Shared foundations: the application error kinds, the typed [`CameraId`], the redacting
//! [`Secret`] wrapper, tracing set-up, the in-memory log ring and hard protocol limits.
//! Everything else depends on this module; it depends on nothing of ours.

pub mod error;
pub mod id;
pub mod limits;
pub mod log_throttle;
pub mod logbuf;
pub mod login_limit;
#[cfg(test)]
pub(crate) mod proptest_util;
pub mod rtc;
pub mod secret;
pub mod stack_poll;
pub mod str0m_crypto;
pub mod timer;
pub mod tls;
pub mod tracing_setup;
pub mod udp;

pub use error::{ErrorKind, ResultExt};
pub use id::CameraId;
pub use secret::Secret;
