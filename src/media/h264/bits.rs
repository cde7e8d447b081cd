//! The MSB-first bit reader of the SPS parsers (`h264::sps`, and `media::h265::sps`
//! since H.265 codes its fields the same way):
//! fixed-width fields and exp-Golomb codes (ITU-T H.264 §9.1, H.265 §9.2) over an
//! RBSP (emulation prevention already removed). Each parser maps [`BitsError`]
//! into its own error.

/// Why a read failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BitsError {
    /// The data ended first.
    Truncated,
    /// An exp-Golomb code longer than 32 bits.
    ExpGolomb,
}

/// Reads bits from a byte slice, most significant bit first.
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// A reader at the first bit of `data`.
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    /// One bit.
    pub(crate) fn bit(&mut self) -> Result<bool, BitsError> {
        let byte = self.data.get(self.pos / 8).ok_or(BitsError::Truncated)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(b == 1)
    }

    /// `n` bits (at most 32) as an unsigned number.
    pub(crate) fn bits(&mut self, n: u32) -> Result<u32, BitsError> {
        let mut v = 0u32;
        for _ in 0..n {
            v = (v << 1) | u32::from(self.bit()?);
        }
        Ok(v)
    }

    /// Skips `n` bits.
    pub(crate) fn skip(&mut self, n: usize) -> Result<(), BitsError> {
        let pos = self.pos.saturating_add(n);
        if pos > self.data.len() * 8 {
            return Err(BitsError::Truncated);
        }
        self.pos = pos;
        Ok(())
    }

    /// Unsigned exp-Golomb (`ue(v)`).
    pub(crate) fn ue(&mut self) -> Result<u32, BitsError> {
        let mut zeros = 0;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return Err(BitsError::ExpGolomb);
            }
        }
        let rest = self.bits(zeros)?;
        Ok(((1u64 << zeros) - 1 + u64::from(rest)) as u32)
    }

    /// Signed exp-Golomb (`se(v)`).
    pub(crate) fn se(&mut self) -> Result<i32, BitsError> {
        let k = i64::from(self.ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        Ok(v as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_exp_golomb_and_skip() {
        // 1 | 010 | 011 | 00100 | 1 ...: ue 0, 1, 2, 3; then one bit.
        let data = [0b1010_0110, 0b0100_1000];
        let mut r = BitReader::new(&data);
        assert_eq!(r.ue(), Ok(0));
        assert_eq!(r.ue(), Ok(1));
        assert_eq!(r.ue(), Ok(2));
        assert_eq!(r.ue(), Ok(3));
        assert_eq!(r.bit(), Ok(true));
        assert_eq!(r.skip(3), Ok(()));
        assert_eq!(r.skip(1), Err(BitsError::Truncated));
        assert_eq!(r.bits(1), Err(BitsError::Truncated));
        let mut r = BitReader::new(&[0b0010_1000]); // 00101 → ue 4 → se -2
        assert_eq!(r.se(), Ok(-2));
        let mut r = BitReader::new(&[0; 8]);
        assert_eq!(r.ue(), Err(BitsError::ExpGolomb));
    }
}
