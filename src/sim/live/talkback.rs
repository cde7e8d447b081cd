//! Talkback measurement for the simulated camera: counts the RTP packets the
//! client sends on the audio track and measures their loudness by decoding the
//! Opus payloads with GStreamer (`appsrc ! opusdec ! appsink`).
//!
//! The decoder runs on GStreamer's streaming thread; its callback only updates
//! the shared counters (no tokio, no panics).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// Talkback counters of one camera.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TalkStats {
    /// RTP packets received.
    pub packets: u64,
    /// Sum of squared decoded samples (normalised to ±1).
    pub sum_sq: f64,
    /// Decoded samples.
    pub samples: u64,
}

impl TalkStats {
    /// RMS of all decoded talkback audio, 0 (silence) ..= 1 (full scale).
    pub fn energy(&self) -> f64 {
        if self.samples == 0 {
            0.0
        } else {
            (self.sum_sq / self.samples as f64).sqrt()
        }
    }
}

/// Per-camera talkback counters, shared by all sessions of a simulator.
pub(crate) type TalkMap = Arc<Mutex<HashMap<u64, TalkStats>>>;

fn with_stats(map: &TalkMap, camera: u64, f: impl FnOnce(&mut TalkStats)) {
    if let Ok(mut m) = map.lock() {
        f(m.entry(camera).or_default());
    }
}

/// Counts packets and decodes Opus for one session.
pub(crate) struct TalkMeter {
    camera: u64,
    map: TalkMap,
    decoder: Option<Decoder>,
    decoder_failed: bool,
}

struct Decoder {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
}

impl TalkMeter {
    pub fn new(camera: u64, map: TalkMap) -> Self {
        TalkMeter {
            camera,
            map,
            decoder: None,
            decoder_failed: false,
        }
    }

    /// Accounts one received RTP payload (an Opus packet). Only audio that
    /// reaches a speaker that is on is decoded and measured, like a real camera
    /// plays talkback only after `camera_options {stealth_mode:false}`.
    pub fn packet(&mut self, payload: &[u8], speaker_on: bool) {
        with_stats(&self.map, self.camera, |s| s.packets += 1);
        if !speaker_on || payload.is_empty() || self.decoder_failed {
            return;
        }
        if self.decoder.is_none() {
            match Decoder::new(self.camera, Arc::clone(&self.map)) {
                Ok(d) => self.decoder = Some(d),
                Err(e) => {
                    tracing::warn!(camera = self.camera, err = %format!("{e:#}"), "talkback decoder unavailable; counting packets only");
                    self.decoder_failed = true;
                    return;
                }
            }
        }
        if let Some(d) = &self.decoder
            && d.src
                .push_buffer(gst::Buffer::from_slice(payload.to_vec()))
                .is_err()
        {
            self.decoder_failed = true;
        }
    }

    /// Stops the decoder (explicit, not in `Drop`).
    pub fn stop(&mut self) {
        if let Some(d) = self.decoder.take() {
            let _ = d.src.end_of_stream();
            let _ = d.pipeline.set_state(gst::State::Null);
        }
    }
}

impl Decoder {
    fn new(camera: u64, map: TalkMap) -> anyhow::Result<Self> {
        gst::init()?;
        let pipeline = gst::parse::launch(
            "appsrc name=src is-live=true format=time do-timestamp=true \
               caps=audio/x-opus,channel-mapping-family=0,channels=2,rate=48000 \
             ! opusdec ! audioconvert ! audio/x-raw,format=S16LE,channels=1 \
             ! appsink name=sink sync=false",
        )?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
        let src = pipeline
            .by_name("src")
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .context("no appsrc")?;
        let sink = pipeline
            .by_name("sink")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .context("no appsink")?;
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let Some(buf) = sample.buffer() else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    let Ok(m) = buf.map_readable() else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    let (mut sum, mut n) = (0f64, 0u64);
                    for c in m.as_slice().chunks_exact(2) {
                        let v = f64::from(i16::from_le_bytes([c[0], c[1]])) / 32768.0;
                        sum += v * v;
                        n += 1;
                    }
                    with_stats(&map, camera, |s| {
                        s.sum_sq += sum;
                        s.samples += n;
                    });
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        pipeline.set_state(gst::State::Playing)?;
        Ok(Decoder { pipeline, src })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn decodes_a_sine_to_nonzero_energy() {
        let packets =
            super::super::clip::encode_opus_sine(std::time::Duration::from_millis(400), 440)
                .unwrap();
        let map: TalkMap = Default::default();
        let mut meter = TalkMeter::new(9, Arc::clone(&map));
        meter.packet(&packets[0], false); // speaker off: counted, not measured
        for p in &packets[1..] {
            meter.packet(p, true);
        }
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let s = map.lock().unwrap().get(&9).copied().unwrap_or_default();
            if s.samples > 0 {
                assert_eq!(s.packets, packets.len() as u64);
                // a 0.5-amplitude sine has RMS ≈ 0.35
                assert!(s.energy() > 0.1 && s.energy() < 0.6, "{}", s.energy());
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "no decoded audio");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        meter.stop();
    }
}
