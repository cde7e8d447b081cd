//! Opus → G.711 µ-law for talkback into a Ring session that negotiated PCMU.
//!
//! [`crate::codec::opus::OpusDecoder`] decodes to 8 kHz mono PCM; its callback
//! (GStreamer's streaming thread) encodes µ-law in Rust ([`linear_to_ulaw`], ITU-T
//! G.711), cuts 160-byte (20 ms) packets and only `try_send`s them (never blocks,
//! never panics). Only used when the Ring side is PCMU; Opus talkback is
//! forwarded untouched.

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use crate::codec::opus::{OpusDecoder, OpusError};

/// PCMU bytes per output packet: 20 ms at 8 kHz.
pub(crate) const PCMU_PACKET: usize = 160;

/// A running Opus→PCMU transcoder. Stop it with [`OpusToPcmu::stop`].
pub(crate) struct OpusToPcmu {
    decoder: OpusDecoder,
    out: mpsc::Receiver<Bytes>,
}

impl OpusToPcmu {
    /// Builds and starts the pipeline (on the blocking pool).
    pub async fn new() -> Result<Self, OpusError> {
        let (tx, out) = mpsc::channel(64);
        let mut pending = BytesMut::new();
        let decoder = OpusDecoder::start_blocking(8_000, move |pcm| {
            pending.extend(pcm.iter().map(|&s| linear_to_ulaw(s)));
            while pending.len() >= PCMU_PACKET {
                // A full queue drops audio rather than stalling GStreamer.
                let _ = tx.try_send(pending.split_to(PCMU_PACKET).freeze());
            }
        })
        .await?;
        Ok(OpusToPcmu { decoder, out })
    }

    /// Feeds one Opus packet. Never blocks.
    pub fn push(&self, opus: Bytes) -> Result<(), OpusError> {
        self.decoder.push(&opus)
    }

    /// The next 160-byte µ-law packet. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.out.recv().await
    }

    /// Stops the pipeline (explicitly, not in `Drop`; on the blocking pool).
    pub async fn stop(self) {
        self.decoder.stop_blocking().await;
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

    /// Transcodes an Opus sine and checks we get 20 ms µ-law packets that are
    /// not silence.
    #[tokio::test]
    async fn transcodes_opus_to_pcmu_packets() {
        let opus =
            crate::codec::encode::opus_sine(std::time::Duration::from_millis(500), 440).unwrap();
        assert!(opus.len() >= 20, "{}", opus.len());

        let mut t = OpusToPcmu::new().await.unwrap();
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
        t.stop().await;
    }
}
