//! `ring-bridge doctor`: every start-up check in one list, each line marked
//! ✓ or ✗, so a new installation shows all its gaps at once.
//!
//! It checks the configuration (as `check-config` does), GStreamer and every
//! element of [`crate::codec::elements::REQUIRED`], the state directory, and
//! the external tools the bench uses. It starts nothing.

use std::fmt::Write as _;
use std::path::Path;

use crate::codec::elements::{self, ElementReport, Part};
use crate::config::{Config, ConfigError};

/// The checks' outcome.
#[derive(Debug, Clone)]
pub struct Doctor {
    /// The printable report, one check per line.
    pub text: String,
    /// False when something the daemon needs is missing or broken.
    pub ok: bool,
}

/// Runs every check. `cfg` is the result of loading the configuration.
pub fn diagnose(cfg: &Result<Config, ConfigError>) -> Doctor {
    let mut d = Lines::default();
    match cfg {
        Ok(c) => {
            d.pass("configuration loads and validates");
            match c.check_access() {
                Ok(()) => d.pass("access: listener and credentials fit together"),
                Err(e) => d.fail(&format!(
                    "access: `ring-bridge run` would refuse to start: {e}"
                )),
            }
            state_dir(&mut d, &c.ring.state_dir);
        }
        Err(e) => d.fail(&format!("configuration: {e}")),
    }
    gstreamer(&mut d, &elements::check());
    match which("ffmpeg") {
        true => d.pass("ffmpeg (the bench's re-encode baseline)"),
        false => d.note(
            "ffmpeg not found: only `ring-bridge bench` needs it; install the Debian package ffmpeg",
        ),
    }
    Doctor {
        ok: !d.failed,
        text: d.text,
    }
}

#[derive(Default)]
struct Lines {
    text: String,
    failed: bool,
}

impl Lines {
    fn pass(&mut self, what: &str) {
        let _ = writeln!(self.text, "✓ {what}");
    }
    fn fail(&mut self, what: &str) {
        let _ = writeln!(self.text, "✗ {what}");
        self.failed = true;
    }
    /// A gap that does not stop the daemon.
    fn note(&mut self, what: &str) {
        let _ = writeln!(self.text, "✗ {what}");
    }
}

fn gstreamer(d: &mut Lines, report: &ElementReport) {
    if let Err(e) = &report.gstreamer {
        d.fail(&format!("GStreamer does not initialise: {e}"));
    } else {
        let (major, minor, micro, _) = gstreamer::version();
        d.pass(&format!("GStreamer {major}.{minor}.{micro}"));
    }
    for (req, found) in &report.results {
        let parts: Vec<String> = req.parts.iter().map(Part::to_string).collect();
        let parts = parts.join(", ");
        if *found {
            d.pass(&format!("{} ({}; {})", req.element, req.package, parts));
            continue;
        }
        let breaks: Vec<&str> = req.parts.iter().map(|p| p.breaks()).collect();
        let line = format!(
            "{}: missing; breaks {}; install the Debian package {}",
            req.element,
            breaks.join(", "),
            req.package
        );
        if req.parts.iter().any(|p| p.runtime()) {
            d.fail(&line);
        } else {
            d.note(&line);
        }
    }
}

fn state_dir(d: &mut Lines, dir: &Path) {
    let probe = dir.join(".doctor-write-check");
    let writable = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b"ok"))
        .and_then(|()| std::fs::remove_file(&probe));
    match writable {
        Ok(()) => d.pass(&format!("state directory {} is writable", dir.display())),
        Err(e) => d.fail(&format!(
            "state directory {} is not writable: {e}",
            dir.display()
        )),
    }
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths)
            .any(|p| std::fs::metadata(p.join(program)).is_ok_and(|m| m.is_file()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_config_fails_the_doctor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "not = [valid").expect("write");
        let cfg = crate::config::load(Some(&path));
        let d = diagnose(&cfg);
        assert!(!d.ok);
        assert!(
            d.text
                .lines()
                .next()
                .is_some_and(|l| l.starts_with("✗ configuration"))
        );
        assert!(d.text.contains("✓ rtph264pay"), "{}", d.text);
    }
}
