//! `ring-bridge auth`: interactive login (e-mail, password, 2FA code) that stores
//! the refresh token in the state directory. Works against the simulator too
//! (`RING_SIMULATOR_URL`).
//!
//! Prompts go to stderr; answers are read from stdin, so the command also works
//! with piped input. The password is read without echo on a terminal and is
//! never stored or logged.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, bail};

use crate::base::Secret;
use crate::cameras::{Credentials, LoginStep, login, login_client};
use crate::config::Config;
use crate::ring::RingHosts;
use crate::ring::client::RingOptions;

/// Where a login goes: the simulator when `RING_SIMULATOR_URL` is set, the real
/// Ring otherwise.
pub fn login_hosts(cfg: &Config) -> RingHosts {
    match &cfg.ring.simulator_url {
        Some(u) => RingHosts::simulator(u),
        None => RingHosts::real(),
    }
}

/// The login client's options: [`login_hosts`], the configured state
/// directory (never the demo one) and device name.
pub fn login_options(cfg: &Config) -> RingOptions {
    let mut opts = RingOptions::new(login_hosts(cfg), cfg.ring.state_dir.clone());
    opts.device_model = cfg.ring.device_name.clone();
    opts
}

/// Prompts for e-mail, password and 2FA code and stores the refresh token.
/// Goes through [`crate::cameras::login`], like the console.
pub async fn interactive(cfg: Config, email: Option<String>) -> anyhow::Result<()> {
    let client = login_client(&login_options(&cfg)).context("opening the state directory")?;

    let mut input = std::io::stdin().lock();
    let email = match email {
        Some(e) => e,
        None => prompt(&mut input, "Ring e-mail: ")?,
    };
    let password = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Ring password: ").context("reading the password")?
    } else {
        prompt(&mut input, "Ring password: ")?
    };
    if email.is_empty() || password.is_empty() {
        bail!("e-mail and password are required");
    }

    let mut creds = Credentials {
        email,
        password: Secret::new(password),
        code: None,
    };
    for _attempt in 0..3 {
        match login(&client, &creds).await.context("Ring login failed")? {
            LoginStep::Linked => {
                let path = cfg.ring.state_dir.display();
                log_line(&format!(
                    "Logged in. The refresh token is stored in {path} (mode 0600); \
                     ring-bridge rotates it on every use."
                ));
                return Ok(());
            }
            LoginStep::CodeRequired { message, .. } => {
                log_line(&message);
                let c = prompt(&mut input, "Verification code: ")?;
                if c.is_empty() {
                    bail!("no verification code entered");
                }
                creds.code = Some(Secret::new(c));
            }
        }
    }
    bail!("Ring login failed: too many verification attempts")
}

fn log_line(s: &str) {
    let mut err = std::io::stderr();
    let _ = writeln!(err, "{s}");
}

fn prompt(input: &mut impl BufRead, label: &str) -> anyhow::Result<String> {
    let mut err = std::io::stderr();
    let _ = write!(err, "{label}");
    let _ = err.flush();
    let mut line = String::new();
    let n = input.read_line(&mut line).context("reading from stdin")?;
    if n == 0 {
        bail!("input ended before {}", label.trim_end_matches([':', ' ']));
    }
    Ok(line.trim().to_owned())
}
