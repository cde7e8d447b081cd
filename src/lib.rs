//! ring-bridge: bridges Ring doorbells and cameras into the home.
//!
//! Data flows one way: the Ring cloud (or the simulator in [`sim`]) → [`ring`]
//! (REST) and `ring::live` (live call) → [`media`] (per-camera hub) → outputs
//! ([`rtsp`], [`webrtc`], [`web`], [`mqtt`]); [`announce`] plays clips and speech
//! into the hub's talkback for `web` and `mqtt`. See `docs/ARCHITECTURE.md`.

// `deny`, not `forbid`: clap's derive (`bench::BenchOptions`) emits an `allow`.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod announce;
pub mod app;
pub mod base;
pub mod bench;
pub mod cameras;
pub mod codec;
pub mod config;
pub mod events;
#[cfg(test)]
mod fuzz;
pub mod media;
pub mod mqtt;
pub mod ring;
pub mod rtsp;
pub mod sim;
pub mod snapshot;
pub mod web;
pub mod webrtc;
