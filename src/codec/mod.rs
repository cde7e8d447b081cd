//! GStreamer codec helpers shared by the outputs and the simulator: a streaming
//! Opus decoder ([`opus`]), finite in-memory encodes of test tones and test
//! pictures ([`encode`]), announcement clips (decode any audio file, resample,
//! encode Opus: [`clip`]), G.711 µ-law in Rust ([`g711`]), and the list of
//! GStreamer elements every part needs with a start-up check ([`elements`]).
//! The media hub itself never decodes or encodes.

pub mod clip;
pub mod elements;
pub mod encode;
pub mod g711;
pub mod opus;
