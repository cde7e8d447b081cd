//! Text to speech with eSpeak NG (Debian package `espeak-ng`; why this engine:
//! `docs/design/0010-announce.md`). Each request runs `espeak-ng --stdout` as a
//! child process: the text goes in on stdin (never on the command line, so it
//! cannot be read as an option), the WAV comes out on stdout, bounded in size
//! and time; the child is killed on timeout, oversize output or cancellation.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::AnnounceError;

/// The engine's program name, looked up in `PATH`.
pub const ESPEAK: &str = "espeak-ng";

/// Longest text spoken, in characters.
pub const MAX_TEXT_CHARS: usize = 500;

/// Options of the speech engine.
#[derive(Clone, Debug)]
pub struct TtsOptions {
    /// The eSpeak NG binary. Default `espeak-ng` (from `PATH`).
    pub program: PathBuf,
    /// Longest run of one synthesis. Default 15 s.
    pub timeout: Duration,
    /// Largest WAV accepted from it. Default 4 MiB (about 90 s at eSpeak's
    /// 22.05 kHz 16-bit mono; the clip limit cuts earlier).
    pub max_output: usize,
    /// Speaking rate in words per minute. Default 160.
    pub words_per_minute: u32,
}

impl Default for TtsOptions {
    fn default() -> Self {
        TtsOptions {
            program: PathBuf::from(ESPEAK),
            timeout: Duration::from_secs(15),
            max_output: 4 * 1024 * 1024,
            words_per_minute: 160,
        }
    }
}

/// Checks and cleans `text` (control characters become spaces; at most
/// [`MAX_TEXT_CHARS`]) and `lang` (an eSpeak voice name such as `en`, `de`,
/// `en-us`, `pt-br`).
pub(crate) fn check(text: &str, lang: &str) -> Result<(String, String), AnnounceError> {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let clean = clean.trim().to_owned();
    if clean.is_empty() {
        return Err(AnnounceError::BadRequest("text is empty".into()));
    }
    let n = clean.chars().count();
    if n > MAX_TEXT_CHARS {
        return Err(AnnounceError::BadRequest(format!(
            "text has {n} characters; at most {MAX_TEXT_CHARS}"
        )));
    }
    let lang = lang.trim().to_ascii_lowercase();
    let ok = (2..=16).contains(&lang.len())
        && lang.split(['-', '_']).enumerate().all(|(i, part)| {
            let alpha = part.chars().all(|c| c.is_ascii_alphanumeric());
            if i == 0 {
                (2..=3).contains(&part.len()) && part.chars().all(|c| c.is_ascii_lowercase())
            } else {
                !part.is_empty() && alpha
            }
        });
    if !ok {
        return Err(AnnounceError::BadRequest(format!(
            "lang {lang:?} is not a language code such as en, de or en-us"
        )));
    }
    Ok((clean, lang))
}

/// Speaks `text` in `lang` (both checked by [`check`]); returns a WAV file.
pub(crate) async fn speak(
    opts: &TtsOptions,
    text: &str,
    lang: &str,
) -> Result<Bytes, AnnounceError> {
    let mut child = tokio::process::Command::new(&opts.program)
        .args(["--stdout", "--stdin", "-b", "1", "-v", lang, "-s"])
        .arg(opts.words_per_minute.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            AnnounceError::Tts(format!(
                "cannot run {} ({e}); install the Debian package espeak-ng",
                opts.program.display()
            ))
        })?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(AnnounceError::Tts("no pipes to the speech engine".into()));
    };
    let limit = opts.max_output;
    let run = async {
        let input = async {
            // A write error shows as a failed exit below.
            let _ = stdin.write_all(text.as_bytes()).await;
            let _ = stdin.write_all(b"\n").await;
            drop(stdin);
        };
        let mut out = Vec::new();
        let mut stdout = stdout.take(limit as u64 + 1);
        let ((), o) = tokio::join!(input, stdout.read_to_end(&mut out));
        o.map_err(|e| AnnounceError::Tts(format!("reading its output: {e}")))?;
        if out.len() > limit {
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(AnnounceError::Tts(format!(
                "its output is larger than {limit} bytes"
            )));
        }
        // stdout is closed: the engine is done; its first error line, if any.
        let mut err = Vec::new();
        let _ = stderr.take(1024).read_to_end(&mut err).await;
        let status = child
            .wait()
            .await
            .map_err(|e| AnnounceError::Tts(format!("waiting for it: {e}")))?;
        if !status.success() || out.is_empty() {
            let msg = String::from_utf8_lossy(&err);
            let msg = msg.lines().next().unwrap_or("").trim();
            return Err(AnnounceError::Tts(if msg.is_empty() {
                format!("espeak-ng failed ({status})")
            } else {
                format!("espeak-ng failed ({status}): {msg} (lang {lang:?})")
            }));
        }
        Ok(Bytes::from(out))
    };
    match tokio::time::timeout(opts.timeout, run).await {
        Ok(r) => r,
        // Dropping the future dropped the child: kill_on_drop ends it.
        Err(_) => Err(AnnounceError::Tts(format!(
            "took longer than {}s",
            opts.timeout.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_language_are_checked() {
        assert_eq!(
            check(" We'll be\nright there ", "EN").unwrap(),
            ("We'll be right there".into(), "en".into())
        );
        assert!(check("hi", "en-us").is_ok());
        assert!(check("hi", "pt_br").is_ok());
        for lang in [
            "",
            "e",
            "--help",
            "en us",
            "../x",
            "english-but-far-too-long",
        ] {
            assert!(check("hi", lang).is_err(), "{lang}");
        }
        assert!(check("   ", "en").is_err());
        assert!(check(&"a".repeat(MAX_TEXT_CHARS + 1), "en").is_err());
    }

    #[tokio::test]
    async fn speaks_a_wav_and_reports_a_missing_engine() {
        let wav = speak(&TtsOptions::default(), "Hello there", "en")
            .await
            .expect("espeak-ng is installed (scripts/setup-deps.sh)");
        assert_eq!(&wav[..4], b"RIFF");
        assert!(wav.len() > 10_000, "{}", wav.len());

        let missing = TtsOptions {
            program: "/nonexistent/espeak-ng".into(),
            ..TtsOptions::default()
        };
        let e = speak(&missing, "Hello", "en").await.unwrap_err();
        assert!(e.to_string().contains("espeak-ng"), "{e}");

        let tiny = TtsOptions {
            max_output: 1000,
            ..TtsOptions::default()
        };
        let e = speak(&tiny, "Hello there, this is long", "en")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
    }
}
