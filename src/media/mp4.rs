//! A minimal ISO-BMFF (MP4) reader: which tracks a recording holds, their
//! sample formats and the movie's length, read from the `moov` box (ISO/IEC
//! 14496-12 §8.2–8.5). Enough to decide how to serve a Ring recording before
//! building a pipeline for it; demuxing itself is GStreamer's job.

/// One track of an MP4 file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Track {
    /// The handler type (`vide`, `soun`, ...).
    pub handler: [u8; 4],
    /// The first sample entry's format (`avc1`, `avc3`, `mp4a`, `Opus`, ...).
    pub format: [u8; 4],
}

impl Track {
    /// An H.264 video track.
    pub fn is_h264(&self) -> bool {
        &self.handler == b"vide" && matches!(&self.format, b"avc1" | b"avc3")
    }

    /// An AAC (MPEG-4 audio) track.
    pub fn is_aac(&self) -> bool {
        &self.handler == b"soun" && &self.format == b"mp4a"
    }
}

/// What [`probe`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mp4Info {
    /// Tracks in file order.
    pub tracks: Vec<Track>,
    /// Length in milliseconds (`mvhd`), when given.
    pub duration_ms: Option<u64>,
}

/// Why a file is not a usable MP4.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mp4Error {
    /// A box header runs past its parent or the file.
    #[error("MP4 box {0:?} is truncated")]
    Truncated(String),
    /// There is no `moov` box.
    #[error("no moov box: not an MP4 file, or an incomplete one")]
    NoMoov,
}

/// Iterates over the boxes of `data`: `(type, payload)`.
fn boxes(data: &[u8]) -> impl Iterator<Item = Result<([u8; 4], &[u8]), Mp4Error>> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        if pos + 8 > data.len() {
            return None;
        }
        let size32 = u32::from_be_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]);
        let kind = [data[pos + 4], data[pos + 5], data[pos + 6], data[pos + 7]];
        let name = || String::from_utf8_lossy(&kind).into_owned();
        let (header, size) = match size32 {
            0 => (8usize, data.len() - pos),
            1 => {
                let Some(b) = data.get(pos + 8..pos + 16) else {
                    pos = data.len();
                    return Some(Err(Mp4Error::Truncated(name())));
                };
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                (
                    16,
                    usize::try_from(u64::from_be_bytes(a)).unwrap_or(usize::MAX),
                )
            }
            n => (8, n as usize),
        };
        let end = pos
            .checked_add(size)
            .filter(|&e| size >= header && e <= data.len());
        let Some(end) = end else {
            pos = data.len();
            return Some(Err(Mp4Error::Truncated(name())));
        };
        let payload = &data[pos + header..end];
        pos = end;
        Some(Ok((kind, payload)))
    })
}

fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Result<Option<&'a [u8]>, Mp4Error> {
    for b in boxes(data) {
        let (k, p) = b?;
        if &k == kind {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

fn be32(d: &[u8], at: usize) -> Option<u32> {
    d.get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn be64(d: &[u8], at: usize) -> Option<u64> {
    let b = d.get(at..at + 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_be_bytes(a))
}

fn fourcc(d: &[u8], at: usize) -> Option<[u8; 4]> {
    d.get(at..at + 4).map(|b| [b[0], b[1], b[2], b[3]])
}

/// Reads the track list and length of the MP4 file `data`.
pub fn probe(data: &[u8]) -> Result<Mp4Info, Mp4Error> {
    let moov = child(data, b"moov")?.ok_or(Mp4Error::NoMoov)?;
    let duration_ms = child(moov, b"mvhd")?.and_then(|m| {
        // version 1: 64-bit times; version 0: 32-bit.
        let (timescale, duration) = if m.first() == Some(&1) {
            (be32(m, 20)?, be64(m, 24)?)
        } else {
            (be32(m, 12)?, u64::from(be32(m, 16)?))
        };
        (timescale > 0).then(|| duration.saturating_mul(1000) / u64::from(timescale))
    });
    let mut tracks = Vec::new();
    for b in boxes(moov) {
        let (k, trak) = b?;
        if &k != b"trak" {
            continue;
        }
        let Some(mdia) = child(trak, b"mdia")? else {
            continue;
        };
        let handler = child(mdia, b"hdlr")?.and_then(|h| fourcc(h, 8));
        let stsd = match child(mdia, b"minf")? {
            Some(minf) => match child(minf, b"stbl")? {
                Some(stbl) => child(stbl, b"stsd")?,
                None => None,
            },
            None => None,
        };
        // stsd: version/flags, entry count, then the first entry's size + format.
        let format = stsd.and_then(|s| fourcc(s, 12));
        if let (Some(handler), Some(format)) = (handler, format) {
            tracks.push(Track { handler, format });
        }
    }
    Ok(Mp4Info {
        tracks,
        duration_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut v = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(payload);
        v
    }

    fn trak(handler: &[u8; 4], format: &[u8; 4]) -> Vec<u8> {
        let mut hdlr = vec![0u8; 8];
        hdlr.extend_from_slice(handler);
        hdlr.extend_from_slice(&[0u8; 12]);
        let mut stsd = vec![0, 0, 0, 0, 0, 0, 0, 1];
        stsd.extend_from_slice(&bx(format, &[0u8; 8]));
        let stbl = bx(b"stbl", &bx(b"stsd", &stsd));
        let minf = bx(b"minf", &stbl);
        let mut mdia = bx(b"hdlr", &hdlr);
        mdia.extend(minf);
        bx(b"trak", &bx(b"mdia", &mdia))
    }

    #[test]
    fn finds_tracks_and_length() {
        let mut mvhd = vec![0u8; 12];
        mvhd.extend_from_slice(&1000u32.to_be_bytes());
        mvhd.extend_from_slice(&4200u32.to_be_bytes());
        let mut moov = bx(b"mvhd", &mvhd);
        moov.extend(trak(b"vide", b"avc1"));
        moov.extend(trak(b"soun", b"mp4a"));
        let mut file = bx(b"ftyp", b"isom\0\0\0\0");
        file.extend(bx(b"mdat", &[1, 2, 3]));
        file.extend(bx(b"moov", &moov));
        let info = probe(&file).unwrap();
        assert_eq!(info.duration_ms, Some(4200));
        assert_eq!(info.tracks.len(), 2);
        assert!(info.tracks[0].is_h264() && info.tracks[1].is_aac());
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(probe(&bx(b"ftyp", b"isom")), Err(Mp4Error::NoMoov));
        assert!(matches!(
            probe(b"not an mp4 at all"),
            Err(Mp4Error::Truncated(_))
        ));
        let mut file = bx(b"ftyp", b"isom");
        file.extend_from_slice(&[0, 0, 1, 0, b'm', b'o', b'o', b'v', 0]);
        assert!(matches!(probe(&file), Err(Mp4Error::Truncated(_))));
    }
}
