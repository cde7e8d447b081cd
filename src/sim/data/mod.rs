//! The simulator's fixed data set, by topic: the account's locations, chime and
//! owners ([`home`]), the cameras ([`cameras`]) and the seeded event history
//! ([`events`]).
//!
//! Other engineers write tests against these exact values (see `docs/SIMULATOR.md`),
//! so change them only together with the docs. These modules hold plain data and
//! pure functions; they do no I/O and know nothing about HTTP. Time helpers are
//! in `super::clock`.

pub mod cameras;
pub mod events;
pub mod home;
