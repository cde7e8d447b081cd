//! Opus → G.711 µ-law for talkback into a Ring session that negotiated PCMU. The
//! only file of `webrtc` that uses GStreamer (decoding Opus needs it).
//!
//! `appsrc ! opusdec ! audioconvert ! audioresample ! S16LE 8 kHz mono ! appsink`,
//! then µ-law in Rust ([`linear_to_ulaw`], ITU-T G.711), cut into 160-byte (20 ms)
//! packets. The appsink callback runs on GStreamer's streaming thread: it only
//! encodes and `try_send`s (never blocks, never panics). No GLib main loop is needed
//! for an appsrc/appsink pipeline. Only used when the Ring side is PCMU; Opus
//! talkback is forwarded untouched.

use bytes::{Bytes, BytesMut};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tokio::sync::mpsc;

/// PCMU bytes per output packet: 20 ms at 8 kHz.
pub(crate) const PCMU_PACKET: usize = 160;

/// Why the transcoder could not be built or fed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TranscodeError {
    /// GStreamer could not be initialised.
    #[error("initialising GStreamer")]
    Init(#[source] gst::glib::Error),
    /// The pipeline description was rejected (a plugin is missing?).
    #[error("building the Opus→PCMU pipeline (needs opusdec, audioconvert, audioresample)")]
    Build(#[source] gst::glib::Error),
    /// The pipeline lacks an element we named.
    #[error("the Opus→PCMU pipeline has no {0}")]
    Missing(&'static str),
    /// The pipeline would not start.
    #[error("starting the Opus→PCMU pipeline")]
    Start(#[source] gst::StateChangeError),
    /// The pipeline refused a packet (it failed earlier).
    #[error("decoding talkback Opus")]
    Push(#[source] gst::FlowError),
}

/// A running Opus→PCMU transcoder. Stop it with [`OpusToPcmu::stop`].
pub(crate) struct OpusToPcmu {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    out: mpsc::Receiver<Bytes>,
}

impl OpusToPcmu {
    /// Builds and starts the pipeline.
    pub fn new() -> Result<Self, TranscodeError> {
        gst::init().map_err(TranscodeError::Init)?;
        let pipeline = gst::parse::launch(
            "appsrc name=src is-live=true format=time do-timestamp=true \
               caps=audio/x-opus,channel-mapping-family=0,channels=2,rate=48000 \
             ! opusdec ! audioconvert ! audioresample \
             ! audio/x-raw,format=S16LE,rate=8000,channels=1 \
             ! appsink name=sink sync=false",
        )
        .map_err(TranscodeError::Build)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| TranscodeError::Missing("pipeline"))?;
        let src = pipeline
            .by_name("src")
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .ok_or(TranscodeError::Missing("appsrc"))?;
        let sink = pipeline
            .by_name("sink")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or(TranscodeError::Missing("appsink"))?;
        let (tx, out) = mpsc::channel(64);
        let mut pending = BytesMut::new();
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
                    pending.extend(
                        map.as_slice()
                            .chunks_exact(2)
                            .map(|c| linear_to_ulaw(i16::from_le_bytes([c[0], c[1]]))),
                    );
                    while pending.len() >= PCMU_PACKET {
                        // A full queue drops audio rather than stalling GStreamer.
                        let _ = tx.try_send(pending.split_to(PCMU_PACKET).freeze());
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        pipeline
            .set_state(gst::State::Playing)
            .map_err(TranscodeError::Start)?;
        Ok(OpusToPcmu { pipeline, src, out })
    }

    /// Feeds one Opus packet. Never blocks.
    pub fn push(&self, opus: Bytes) -> Result<(), TranscodeError> {
        self.src
            .push_buffer(gst::Buffer::from_slice(opus))
            .map(|_| ())
            .map_err(TranscodeError::Push)
    }

    /// The next 160-byte µ-law packet. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.out.recv().await
    }

    /// Stops the pipeline (explicitly, not in `Drop`).
    pub fn stop(self) {
        let _ = self.src.end_of_stream();
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// ITU-T G.711 µ-law encoding of one 16-bit linear sample.
pub(crate) fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && s & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    // Lossless: every term is below 0x100.
    !((sign | (exponent << 4) | mantissa) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_reference_values() {
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_ulaw(-1), 0x7F);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        // Monotonic in magnitude within each sign.
        let pos: Vec<u8> = [0i16, 100, 1000, 10_000, 30_000]
            .iter()
            .map(|&s| linear_to_ulaw(s))
            .collect();
        assert!(pos.windows(2).all(|w| w[0] > w[1]), "{pos:?}");
    }

    /// Encodes a sine with GStreamer, transcodes it, and checks we get 20 ms µ-law
    /// packets that are not silence.
    #[tokio::test]
    async fn transcodes_opus_to_pcmu_packets() {
        gst::init().unwrap();
        let launch = "audiotestsrc wave=sine freq=440 volume=0.5 num-buffers=25 \
            samplesperbuffer=960 ! audio/x-raw,rate=48000,channels=2 \
            ! opusenc frame-size=20 ! appsink name=sink sync=false";
        let p = gst::parse::launch(launch)
            .unwrap()
            .downcast::<gst::Pipeline>()
            .unwrap();
        let sink = p
            .by_name("sink")
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap();
        p.set_state(gst::State::Playing).unwrap();
        let mut opus = Vec::new();
        while let Some(s) = sink.try_pull_sample(gst::ClockTime::from_seconds(10)) {
            let buf = s.buffer().unwrap();
            if !buf.flags().contains(gst::BufferFlags::HEADER) {
                opus.push(Bytes::copy_from_slice(&buf.map_readable().unwrap()));
            }
        }
        p.set_state(gst::State::Null).unwrap();
        assert!(opus.len() >= 20, "{}", opus.len());

        let mut t = OpusToPcmu::new().unwrap();
        for pkt in &opus {
            t.push(pkt.clone()).unwrap();
        }
        let mut loud = 0;
        for _ in 0..10 {
            let pkt = tokio::time::timeout(std::time::Duration::from_secs(10), t.recv())
                .await
                .expect("PCMU within 10 s")
                .unwrap();
            assert_eq!(pkt.len(), PCMU_PACKET);
            // µ-law silence is 0xFF/0x7F; a 0.5 sine has many samples far from it.
            loud += pkt.iter().filter(|&&b| b & 0x70 != 0x70).count();
        }
        assert!(loud > 100, "{loud}");
        t.stop();
    }
}
