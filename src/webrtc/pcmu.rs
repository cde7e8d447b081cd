//! Opus → G.711 µ-law for talkback into a Ring session that negotiated PCMU.
//!
//! [`crate::codec::opus::OpusDecoder`] decodes to 8 kHz mono PCM; its callback
//! (GStreamer's streaming thread) encodes µ-law in Rust ([`crate::codec::g711`]), cuts 160-byte (20 ms) packets and only `try_send`s them (never blocks,
//! never panics). Only used when the Ring side is PCMU; Opus talkback is
//! forwarded untouched.

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use crate::codec::g711::linear_to_ulaw;
use crate::codec::opus::{OpusDecoder, OpusError};

pub(crate) use crate::codec::g711::PCMU_PACKET;

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

#[cfg(test)]
mod tests {
    use super::*;

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
