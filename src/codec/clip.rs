//! Finite audio clips with GStreamer, for announcements: decode an uploaded
//! file (WAV, MP3, Ogg Vorbis/Opus; the container is sniffed, not trusted from
//! the request) to 16-bit mono PCM, resample PCM, and encode PCM to 20 ms Opus
//! packets. µ-law is done in Rust ([`super::g711`]).
//!
//! Every function here **blocks** (pipeline state changes, pulling samples):
//! call it from `spawn_blocking`. Each runs one short pipeline
//! `appsrc ! … ! appsink`, bounded in time, and stops it before returning. The
//! elements `decodebin` may pick are listed in [`super::elements::REQUIRED`]
//! under [`super::elements::Part::Announce`].

use std::time::{Duration, Instant};

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_base as gst_base;

/// Sample rate of decoded clips and of Opus talkback.
pub const CLIP_RATE: u32 = 48_000;
/// Samples of one Opus packet made by [`encode_opus`]: 20 ms at 48 kHz.
pub const OPUS_PACKET_SAMPLES: u32 = 960;

/// Why a clip could not be decoded or encoded.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    /// GStreamer could not be initialised.
    #[error("initialising GStreamer")]
    Init(#[source] gst::glib::Error),
    /// The pipeline description was rejected (a plugin is missing?).
    #[error("building the audio pipeline (needs {needs})")]
    Build {
        /// The elements the pipeline names.
        needs: &'static str,
        /// GStreamer's error.
        #[source]
        source: gst::glib::Error,
    },
    /// The pipeline lacks an element we named.
    #[error("the audio pipeline has no {0}")]
    Missing(&'static str),
    /// The pipeline would not start.
    #[error("starting the audio pipeline")]
    Start(#[source] gst::StateChangeError),
    /// The input is not audio GStreamer can decode (unknown or broken format,
    /// no audio stream).
    #[error("not decodable audio: {0}")]
    Undecodable(String),
    /// The decoded clip is longer than allowed.
    #[error("the clip is longer than {}s", .max.as_secs())]
    TooLong {
        /// The longest clip allowed.
        max: Duration,
    },
    /// The input decoded to no samples at all.
    #[error("the clip holds no audio")]
    Empty,
    /// The pipeline did not finish in time.
    #[error("audio processing took longer than {}s", .0.as_secs())]
    Timeout(Duration),
}

/// 16-bit mono PCM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pcm {
    /// Samples at `rate`.
    pub samples: Vec<i16>,
    /// Samples per second.
    pub rate: u32,
}

impl Pcm {
    /// The clip's length.
    pub fn duration(&self) -> Duration {
        if self.rate == 0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(self.samples.len() as f64 / f64::from(self.rate))
    }

    /// Scales every sample by `gain` (1.0 = unchanged), saturating.
    pub fn scale(&mut self, gain: f32) {
        for s in &mut self.samples {
            *s = (f32::from(*s) * gain).clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16;
        }
    }
}

/// Caps of 16-bit mono PCM at `rate`.
fn raw_caps(rate: u32) -> String {
    format!("audio/x-raw,format=S16LE,rate={rate},channels=1,layout=interleaved")
}

/// Runs `appsrc name=src ! … ! appsink name=sink` over `input` to its end,
/// handing every output buffer to `on_buffer` (which may stop the run with an
/// error). Fails with the first error GStreamer posts, or after `limit`.
fn run(
    launch: &str,
    needs: &'static str,
    input: impl FnOnce() -> gst::Buffer,
    limit: Duration,
    mut on_buffer: impl FnMut(&gst::BufferRef) -> Result<(), ClipError>,
) -> Result<(), ClipError> {
    gst::init().map_err(ClipError::Init)?;
    let input = input();
    let pipeline = gst::parse::launch(launch)
        .map_err(|source| ClipError::Build { needs, source })?
        .downcast::<gst::Pipeline>()
        .map_err(|_| ClipError::Missing("pipeline"))?;
    let result = (|| {
        let src = pipeline
            .by_name("src")
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .ok_or(ClipError::Missing("appsrc"))?;
        let sink = pipeline
            .by_name("sink")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or(ClipError::Missing("appsink"))?;
        let bus = pipeline.bus().ok_or(ClipError::Missing("bus"))?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(ClipError::Start)?;
        // Errors here show up on the bus too, with a better message.
        let _ = src.push_buffer(input);
        let _ = src.end_of_stream();
        let deadline = Instant::now() + limit;
        loop {
            // An error ends the run; so does decodebin's "missing-plugin" note (no
            // decoder for what typefind found), which does not always come with one.
            let msg = bus.pop_filtered(&[gst::MessageType::Error, gst::MessageType::Element]);
            let why = match msg.as_ref().map(|m| m.view()) {
                Some(gst::MessageView::Error(e)) => Some(e.error().to_string()),
                Some(gst::MessageView::Element(e))
                    if e.structure().is_some_and(|s| s.name() == "missing-plugin") =>
                {
                    Some("no decoder for this format".to_owned())
                }
                _ => None,
            };
            if let Some(why) = why {
                return Err(ClipError::Undecodable(format!(
                    "{why} (readable here: {})",
                    formats().join(", ")
                )));
            }
            match sink.try_pull_sample(gst::ClockTime::from_mseconds(50)) {
                Some(sample) => {
                    if let Some(buf) = sample.buffer() {
                        on_buffer(buf)?;
                    }
                }
                None if sink.is_eos() => return Ok(()),
                None => {}
            }
            if Instant::now() >= deadline {
                return Err(ClipError::Timeout(limit));
            }
        }
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// The file formats [`decode`] reads on this machine: those whose elements
/// (what `decodebin` picks) are installed. Named in "not decodable" errors.
pub fn formats() -> Vec<&'static str> {
    if gst::init().is_err() || gst::ElementFactory::find("typefind").is_none() {
        return Vec::new();
    }
    let ogg = gst::ElementFactory::find("oggdemux").is_some();
    [
        ("WAV", gst::ElementFactory::find("wavparse").is_some()),
        (
            "MP3",
            gst::ElementFactory::find("mpegaudioparse").is_some()
                && gst::ElementFactory::find("mpg123audiodec").is_some(),
        ),
        (
            "Ogg Vorbis",
            ogg && gst::ElementFactory::find("vorbisdec").is_some(),
        ),
        (
            "Ogg Opus",
            ogg && gst::ElementFactory::find("opusparse").is_some()
                && gst::ElementFactory::find("opusdec").is_some(),
        ),
    ]
    .into_iter()
    .filter_map(|(name, ok)| ok.then_some(name))
    .collect()
}

/// Appends the S16LE samples of `buf` to `out`.
fn append_s16(buf: &gst::BufferRef, out: &mut Vec<i16>) {
    if let Ok(map) = buf.map_readable() {
        out.extend(
            map.as_slice()
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]])),
        );
    }
}

/// Decodes an audio file (any container and codec `decodebin` knows: WAV, MP3,
/// Ogg Vorbis, Ogg Opus, ...) to mono PCM at [`CLIP_RATE`]. Fails with
/// [`ClipError::Undecodable`] for anything else, [`ClipError::TooLong`] as soon
/// as more than `max` is decoded, [`ClipError::Empty`] for no samples.
/// Blocks; bounded by `limit`.
pub fn decode(file: Bytes, max: Duration, limit: Duration) -> Result<Pcm, ClipError> {
    sniff(&file)?;
    let launch = format!(
        "appsrc name=src ! decodebin ! audioconvert ! audioresample ! {} \
         ! appsink name=sink sync=false",
        raw_caps(CLIP_RATE)
    );
    let cap = (max.as_secs_f64() * f64::from(CLIP_RATE)) as usize;
    let mut samples = Vec::new();
    run(
        &launch,
        "decodebin, audioconvert, audioresample",
        || gst::Buffer::from_slice(file),
        limit,
        |buf| {
            append_s16(buf, &mut samples);
            if samples.len() > cap {
                return Err(ClipError::TooLong { max });
            }
            Ok(())
        },
    )?;
    if samples.is_empty() {
        return Err(ClipError::Empty);
    }
    Ok(Pcm {
        samples,
        rate: CLIP_RATE,
    })
}

/// Refuses input that is plainly not an audio file before any pipeline runs:
/// GStreamer's type finders (the ones `decodebin` uses) recognise nothing, or
/// recognise text or an image. Anything else goes to `decodebin`, which decides.
fn sniff(file: &[u8]) -> Result<(), ClipError> {
    gst::init().map_err(ClipError::Init)?;
    let undecodable = |what: String| {
        ClipError::Undecodable(format!("{what} (readable here: {})", formats().join(", ")))
    };
    match gst_base::functions::type_find_helper_for_data(None::<&gst::Object>, file) {
        Err(_) => Err(undecodable("unknown file type".to_owned())),
        Ok((caps, _)) => {
            let name = caps.structure(0).map_or("", |s| s.name().as_str());
            if name.starts_with("text/") || name.starts_with("image/") {
                Err(undecodable(format!("a {name} file, not audio")))
            } else {
                Ok(())
            }
        }
    }
}

/// A buffer of `pcm`'s samples, timestamped from 0.
fn pcm_buffer(pcm: &Pcm) -> gst::Buffer {
    let bytes: Vec<u8> = pcm.samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut buf = gst::Buffer::from_mut_slice(bytes);
    if let Some(b) = buf.get_mut() {
        b.set_pts(gst::ClockTime::ZERO);
        b.set_duration(gst::ClockTime::from_nseconds(
            u64::try_from(pcm.duration().as_nanos()).unwrap_or(u64::MAX),
        ));
    }
    buf
}

/// Resamples `pcm` to `rate` (e.g. 8 kHz for PCMU). Blocks; bounded by `limit`.
pub fn resample(pcm: &Pcm, rate: u32, limit: Duration) -> Result<Pcm, ClipError> {
    if pcm.rate == rate {
        return Ok(pcm.clone());
    }
    let launch = format!(
        "appsrc name=src format=time caps={} ! audioconvert ! audioresample ! {} \
         ! appsink name=sink sync=false",
        raw_caps(pcm.rate),
        raw_caps(rate)
    );
    let mut samples = Vec::with_capacity(pcm.samples.len() * rate as usize / pcm.rate as usize);
    run(
        &launch,
        "audioconvert, audioresample",
        || pcm_buffer(pcm),
        limit,
        |buf| {
            append_s16(buf, &mut samples);
            Ok(())
        },
    )?;
    Ok(Pcm { samples, rate })
}

/// Encodes `pcm` (at [`CLIP_RATE`]) to 20 ms Opus packets (mono, 48 kbit/s,
/// the last packet padded). Blocks; bounded by `limit`.
pub fn encode_opus(pcm: &Pcm, limit: Duration) -> Result<Vec<Bytes>, ClipError> {
    let launch = format!(
        "appsrc name=src format=time caps={} ! audioconvert ! audioresample \
         ! opusenc frame-size=20 bitrate=48000 ! appsink name=sink sync=false",
        raw_caps(pcm.rate)
    );
    let mut packets = Vec::new();
    run(
        &launch,
        "audioconvert, audioresample, opusenc",
        || pcm_buffer(pcm),
        limit,
        |buf| {
            if !buf.flags().contains(gst::BufferFlags::HEADER)
                && let Ok(map) = buf.map_readable()
            {
                packets.push(Bytes::copy_from_slice(&map));
            }
            Ok(())
        },
    )?;
    if packets.is_empty() {
        return Err(ClipError::Empty);
    }
    Ok(packets)
}

/// A WAV file (RIFF, 16-bit mono PCM) holding `pcm`: what tests upload.
pub fn wav(pcm: &Pcm) -> Vec<u8> {
    let data_len = u32::try_from(pcm.samples.len() * 2).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&pcm.rate.to_le_bytes());
    out.extend_from_slice(&(pcm.rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in &pcm.samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// `len` of a sine at `freq` Hz and `amplitude` (0..=1 of full scale), mono at
/// `rate`.
pub fn sine(len: Duration, freq: f64, amplitude: f64, rate: u32) -> Pcm {
    let n = (len.as_secs_f64() * f64::from(rate)) as usize;
    let samples = (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            (amplitude * 32_767.0 * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16
        })
        .collect();
    Pcm { samples, rate }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(20);

    #[test]
    fn a_wav_decodes_resamples_and_encodes() {
        let tone = sine(Duration::from_millis(1500), 440.0, 0.5, 16_000);
        let pcm = decode(wav(&tone).into(), Duration::from_secs(30), LIMIT).unwrap();
        assert_eq!(pcm.rate, CLIP_RATE);
        let ms = pcm.duration().as_millis();
        assert!((1480..=1520).contains(&ms), "{ms} ms");

        let opus = encode_opus(&pcm, LIMIT).unwrap();
        // 1.5 s in 20 ms packets (the encoder's lookahead may add one).
        assert!((75..=77).contains(&opus.len()), "{}", opus.len());

        let low = resample(&pcm, 8_000, LIMIT).unwrap();
        let ms = low.duration().as_millis();
        assert!((1480..=1520).contains(&ms), "{ms} ms");
    }

    #[test]
    fn bad_and_long_input_is_refused() {
        let e = decode(
            Bytes::from_static(b"this is not audio at all, just some text"),
            Duration::from_secs(30),
            LIMIT,
        )
        .unwrap_err();
        assert!(matches!(e, ClipError::Undecodable(_)), "{e:?}");
        assert!(
            e.to_string().contains("WAV, MP3, Ogg Vorbis, Ogg Opus"),
            "{e}"
        );
        // Non-audio input is refused at once, every time (it once ran into the
        // time limit inside decodebin): text, an image, nothing recognisable.
        let png =
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
        let inputs: [&[u8]; 4] = [b"{\"a\": 1}", b"plain words, nothing else", png, &[0u8; 7]];
        for round in 0..25 {
            for input in inputs {
                let started = Instant::now();
                let e = decode(
                    Bytes::copy_from_slice(input),
                    Duration::from_secs(30),
                    LIMIT,
                )
                .unwrap_err();
                assert!(
                    matches!(e, ClipError::Undecodable(_)),
                    "round {round}: {e:?}"
                );
                assert!(started.elapsed() < Duration::from_secs(5), "round {round}");
            }
        }

        let long = sine(Duration::from_secs(3), 440.0, 0.5, 8_000);
        let e = decode(wav(&long).into(), Duration::from_secs(2), LIMIT).unwrap_err();
        assert!(matches!(e, ClipError::TooLong { .. }), "{e:?}");
    }

    #[test]
    fn volume_scales_and_saturates() {
        let mut p = Pcm {
            samples: vec![1000, -1000, 30_000],
            rate: 8000,
        };
        p.scale(0.5);
        assert_eq!(p.samples, [500, -500, 15_000]);
        p.scale(4.0);
        assert_eq!(p.samples, [2000, -2000, i16::MAX]);
    }
}
