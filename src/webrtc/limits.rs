//! Size and shape limits of a viewer's SDP (WHEP offers and trickle fragments),
//! checked in one linear pass *before* any parsing, so a hostile body costs
//! microseconds instead of seconds of CPU (an `m=` line listing a payload type
//! 200,000 times, 60,000 `a=fmtp` lines).
//!
//! Browsers send offers of 5-20 KB with a few hundred lines, 2-3 m-lines and at
//! most a few dozen payload types per m-line; the defaults leave wide margins.

/// Limits of [`check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdpLimits {
    /// Largest body in bytes (`limits.whep_max_offer_bytes`). Default 64 KiB.
    pub max_bytes: usize,
    /// Most lines (`limits.whep_max_offer_lines`). Default 2000.
    pub max_lines: usize,
}

impl Default for SdpLimits {
    fn default() -> Self {
        SdpLimits {
            max_bytes: 64 * 1024,
            max_lines: 2000,
        }
    }
}

/// Most `m=` sections (audio, video, data, and spares a browser keeps).
pub const MAX_MEDIA_SECTIONS: usize = 16;
/// Most formats on one `m=` line: RTP payload types are 7 bits, so 128 distinct.
pub const MAX_FORMATS_PER_MEDIA: usize = 128;
/// Longest single line in bytes (a candidate or fingerprint is ~150).
pub const MAX_LINE_BYTES: usize = 4096;

/// Why a body was refused; the text is for the client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TooLarge(pub String);

/// Checks `text` against `limits` and the fixed shape limits above, in time
/// linear in its length.
pub fn check(text: &str, limits: SdpLimits) -> Result<(), TooLarge> {
    if text.len() > limits.max_bytes {
        return Err(TooLarge(format!(
            "{} bytes; at most {} are accepted",
            text.len(),
            limits.max_bytes
        )));
    }
    let mut media = 0usize;
    for (n, line) in text.lines().enumerate() {
        if n >= limits.max_lines {
            return Err(TooLarge(format!("more than {} lines", limits.max_lines)));
        }
        if line.len() > MAX_LINE_BYTES {
            return Err(TooLarge(format!(
                "line {} is {} bytes long; at most {MAX_LINE_BYTES}",
                n + 1,
                line.len()
            )));
        }
        if let Some(rest) = line.strip_prefix("m=") {
            media += 1;
            if media > MAX_MEDIA_SECTIONS {
                return Err(TooLarge(format!(
                    "more than {MAX_MEDIA_SECTIONS} m= sections"
                )));
            }
            // m=<media> <port> <proto> <fmt> ...
            let formats = rest.split_ascii_whitespace().count().saturating_sub(3);
            if formats > MAX_FORMATS_PER_MEDIA {
                return Err(TooLarge(format!(
                    "an m= line lists {formats} formats; at most {MAX_FORMATS_PER_MEDIA}"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let l = SdpLimits::default();
        assert!(check("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n", l).is_ok());
        let many_pts = format!("v=0\r\nm=video 9 RTP/AVP{}\r\n", " 96".repeat(200));
        assert!(check(&many_pts, l).unwrap_err().0.contains("200 formats"));
        let many_lines = "a=fmtp:97 x\r\n".repeat(3000);
        assert!(check(&many_lines, l).is_err());
        let many_m = "m=audio 9 RTP/AVP 0\r\n".repeat(17);
        assert!(check(&many_m, l).is_err());
        let long = format!("a={}\r\n", "x".repeat(5000));
        assert!(check(&long, l).is_err());
        let big = "v".repeat(70_000);
        assert!(check(&big, l).unwrap_err().0.contains("70000 bytes"));
    }
}
