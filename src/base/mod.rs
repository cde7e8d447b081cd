//! Shared foundations: the application error kinds, the redacting [`Secret`] wrapper,
//! and tracing set-up. Everything else depends on this module; it depends on nothing
//! of ours.

pub mod error;
pub mod secret;
pub mod tracing_setup;

pub use error::{ErrorKind, ResultExt};
pub use secret::Secret;
