//! Opus decoding with GStreamer: a streaming decoder to 16-bit mono PCM
//! (talkback into a PCMU Ring session, the simulated camera's speaker meter).
//! Encoding test tones: [`super::encode::opus_sine`].
//!
//! The decoder is `appsrc ! opusdec ! audioconvert ! audioresample ! S16LE mono !
//! appsink`; its callback runs on GStreamer's streaming thread, so it must be
//! quick and must not block. No GLib main loop is needed for appsrc/appsink.

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// Why an Opus pipeline could not be built, fed or run.
#[derive(Debug, thiserror::Error)]
pub enum OpusError {
    /// GStreamer could not be initialised.
    #[error("initialising GStreamer")]
    Init(#[source] gst::glib::Error),
    /// The pipeline description was rejected (a plugin is missing?).
    #[error("building the Opus decoder (needs opusdec, audioconvert, audioresample)")]
    Build(#[source] gst::glib::Error),
    /// The pipeline lacks an element we named.
    #[error("the Opus pipeline has no {0}")]
    Missing(&'static str),
    /// The pipeline would not start.
    #[error("starting the Opus pipeline")]
    Start(#[source] gst::StateChangeError),
    /// The pipeline refused a packet (it failed earlier).
    #[error("decoding Opus")]
    Push(#[source] gst::FlowError),
    /// The blocking task that starts the pipeline panicked or was cancelled.
    #[error("starting the Opus pipeline off the async runtime")]
    Task(#[source] tokio::task::JoinError),
}

fn pipeline(launch: &str) -> Result<gst::Pipeline, OpusError> {
    gst::init().map_err(OpusError::Init)?;
    gst::parse::launch(launch)
        .map_err(OpusError::Build)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| OpusError::Missing("pipeline"))
}

fn element<T: IsA<gst::Element>>(p: &gst::Pipeline, name: &'static str) -> Result<T, OpusError> {
    p.by_name(name)
        .and_then(|e| e.downcast::<T>().ok())
        .ok_or(OpusError::Missing(name))
}

/// A running Opus → 16-bit mono PCM decoder. Async code starts and stops it
/// with [`OpusDecoder::start_blocking`] and [`OpusDecoder::stop_blocking`].
pub struct OpusDecoder {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
}

impl OpusDecoder {
    /// Starts a decoder for 48 kHz stereo-capable Opus (WebRTC's `opus/48000/2`)
    /// that hands PCM at `rate` Hz to `on_pcm`, on GStreamer's thread. Blocks
    /// for the state change: call it from `spawn_blocking` or a GLib thread, or
    /// use [`Self::start_blocking`].
    pub(crate) fn start(
        rate: u32,
        mut on_pcm: impl FnMut(&[i16]) + Send + 'static,
    ) -> Result<OpusDecoder, OpusError> {
        let pipeline = pipeline(&format!(
            "appsrc name=src is-live=true format=time do-timestamp=true \
               caps=audio/x-opus,channel-mapping-family=0,channels=2,rate=48000 \
             ! opusdec ! audioconvert ! audioresample \
             ! audio/x-raw,format=S16LE,rate={rate},channels=1 \
             ! appsink name=sink sync=false"
        ))?;
        let src: gst_app::AppSrc = element(&pipeline, "src")?;
        let sink: gst_app::AppSink = element(&pipeline, "sink")?;
        let mut samples = Vec::new();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let Some(buf) = sample.buffer() else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    let Ok(map) = buf.map_readable() else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    samples.clear();
                    samples.extend(
                        map.as_slice()
                            .chunks_exact(2)
                            .map(|c| i16::from_le_bytes([c[0], c[1]])),
                    );
                    on_pcm(&samples);
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        pipeline
            .set_state(gst::State::Playing)
            .map_err(OpusError::Start)?;
        Ok(OpusDecoder { pipeline, src })
    }

    /// [`Self::start`] on tokio's blocking pool: GStreamer state changes may
    /// block, so async code never runs them on a runtime worker.
    pub async fn start_blocking(
        rate: u32,
        on_pcm: impl FnMut(&[i16]) + Send + 'static,
    ) -> Result<OpusDecoder, OpusError> {
        tokio::task::spawn_blocking(move || Self::start(rate, on_pcm))
            .await
            .map_err(OpusError::Task)?
    }

    /// Feeds one Opus packet. Never blocks.
    pub fn push(&self, packet: &[u8]) -> Result<(), OpusError> {
        self.src
            .push_buffer(gst::Buffer::from_slice(packet.to_vec()))
            .map(|_| ())
            .map_err(OpusError::Push)
    }

    /// Stops the pipeline. Blocks for the state change: call it from
    /// `spawn_blocking` or a GLib thread, or use [`Self::stop_blocking`].
    pub(crate) fn stop(self) {
        let _ = self.src.end_of_stream();
        let _ = self.pipeline.set_state(gst::State::Null);
    }

    /// [`Self::stop`] on tokio's blocking pool, for async callers.
    pub async fn stop_blocking(self) {
        let _ = tokio::task::spawn_blocking(move || self.stop()).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_sine_round_trips_with_its_energy() {
        let packets = crate::codec::encode::opus_sine(Duration::from_millis(400), 440).unwrap();
        assert!(packets.len() >= 19, "{}", packets.len());
        let (tx, rx) = std::sync::mpsc::channel();
        let dec = OpusDecoder::start(16_000, move |pcm| {
            let _ = tx.send(pcm.to_vec());
        })
        .unwrap();
        for p in &packets {
            dec.push(p).unwrap();
        }
        let mut pcm = Vec::new();
        while pcm.len() < 3200 {
            let chunk = rx
                .recv_timeout(Duration::from_secs(10))
                .expect("decoded audio within 10 s");
            pcm.extend(chunk);
        }
        dec.stop();
        let rms = (pcm
            .iter()
            .map(|&s| (f64::from(s) / 32768.0).powi(2))
            .sum::<f64>()
            / pcm.len() as f64)
            .sqrt();
        // A 0.5-amplitude sine has an RMS of about 0.35 (less during the
        // decoder's ramp-up).
        assert!(rms > 0.1 && rms < 0.6, "{rms}");
    }
}
