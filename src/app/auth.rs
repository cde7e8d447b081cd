//! `ring-bridge auth`: interactive login.

use crate::config::Config;

/// Prompts for e-mail, password and 2FA code and stores the refresh token.
pub async fn interactive(_cfg: Config, _email: Option<String>) -> anyhow::Result<()> {
    anyhow::bail!("auth wiring lands with the foundation merge")
}
