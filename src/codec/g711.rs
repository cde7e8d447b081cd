//! ITU-T G.711 µ-law, in Rust (no GStreamer element needed): PCMU talkback for
//! Ring sessions that negotiated it (WHEP talkback, announcements).

/// PCMU bytes per talkback packet: 20 ms at 8 kHz.
pub const PCMU_PACKET: usize = 160;

/// ITU-T G.711 µ-law encoding of one 16-bit linear sample.
pub fn linear_to_ulaw(sample: i16) -> u8 {
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

/// µ-law encodes 8 kHz mono PCM and cuts it into [`PCMU_PACKET`]-byte packets
/// (the last one may be shorter).
pub fn ulaw_packets(pcm: &[i16]) -> Vec<bytes::Bytes> {
    pcm.chunks(PCMU_PACKET)
        .map(|c| {
            c.iter()
                .map(|&s| linear_to_ulaw(s))
                .collect::<Vec<u8>>()
                .into()
        })
        .collect()
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

    #[test]
    fn packets_are_20_ms() {
        let p = ulaw_packets(&[0; 400]);
        assert_eq!(
            p.iter().map(|b| b.len()).collect::<Vec<_>>(),
            [160, 160, 80]
        );
        assert!(p[0].iter().all(|&b| b == 0xFF));
    }
}
