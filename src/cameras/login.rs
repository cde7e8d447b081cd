//! Linking a Ring account with e-mail, password and 2FA code: the one login path
//! shared by `ring-bridge auth` (the CLI prompt in `app::auth`) and the console
//! (`POST /api/auth/login` through [`super::account`]).
//!
//! A login is one or two calls of [`login`]: without a code Ring usually answers
//! that it sent one ([`LoginStep::CodeRequired`]); the caller asks the person and
//! calls again with the same credentials plus the code. On success the refresh
//! token is saved in the state directory by the Ring client (atomically, 0600).
//!
//! The password and the code are [`Secret`]s: they never reach `Debug`, logs or
//! error messages, and nothing here stores them.

use crate::base::Secret;
use crate::ring::client::{RingClient, RingOptions};
use crate::ring::{Error, ErrorInner};

/// What a person typed to log in.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The Ring account's e-mail address.
    pub email: String,
    /// The password (never logged or stored).
    pub password: Secret<String>,
    /// The 2FA code Ring sent, on the second call.
    pub code: Option<Secret<String>>,
}

/// The outcome of one [`login`] call that did not fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginStep {
    /// Logged in; the refresh token is saved.
    Linked,
    /// Ring sent a verification code: call [`login`] again with it.
    CodeRequired {
        /// For the person, e.g. "Ring sent a verification code (sms to +1xxxxxx89);
        /// enter it to continue".
        message: String,
        /// `sms`, `email` or `totp`.
        tsv_state: String,
        /// Masked destination, when Ring says.
        phone: Option<String>,
    },
}

/// A Ring client for logging in with `opts` (where the login goes, the state
/// directory the token is saved in, the device name). Does blocking file I/O
/// (creates the state directory and hardware id); does not contact Ring.
pub fn login_client(opts: &RingOptions) -> Result<RingClient, Error> {
    RingClient::new(opts.clone())
}

/// One step of the password grant (ring-api.md §1.2) through `client`, which
/// saves the refresh token on success. Errors are the client's:
/// `Auth(BadCredentials | WrongCode | TooManyCodeRequests)`, `RateLimited`,
/// `Transport` (Ring unreachable), ...
pub async fn login(client: &RingClient, creds: &Credentials) -> Result<LoginStep, Error> {
    let code = creds.code.as_ref().map(|c| c.expose().as_str());
    match client
        .login_password(&creds.email, creds.password.expose(), code)
        .await
    {
        Ok(()) => Ok(LoginStep::Linked),
        Err(e) => match e.inner() {
            ErrorInner::TwoFactorRequired { tsv_state, phone } => Ok(LoginStep::CodeRequired {
                message: e.to_string(),
                tsv_state: tsv_state.clone(),
                phone: phone.clone(),
            }),
            _ => Err(e),
        },
    }
}
