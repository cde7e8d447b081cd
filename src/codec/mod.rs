//! GStreamer codec helpers shared by the outputs and the simulator: a streaming
//! Opus decoder ([`opus`]) and finite in-memory encodes of test tones and test
//! pictures ([`encode`]), and the list of GStreamer elements every part needs
//! with a start-up check ([`elements`]). The media hub itself never decodes or
//! encodes.

pub mod elements;
pub mod encode;
pub mod opus;
