//! The camera-services layer: what every output (`web`, `mqtt`, `rtsp`) and the
//! event intake (`events`) share about the account's cameras.
//!
//! - [`Directory`]: the live camera list (refreshed from Ring in the background),
//!   with snapshots ([`Directory::subscribe`]) and per-camera change
//!   notifications ([`Directory::changes`]);
//! - [`Urls`]: the public RTSP, WHEP and console URLs of the running daemon;
//! - [`Account`]: the linked Ring account (status, console login with 2FA,
//!   unlink), announcing an [`AccountChange`] that `app` turns into a restart;
//!   [`login`] is the one login path, shared with the `auth` command.
//!
//! [`Cameras`] is the component `app` starts: it owns the directory's refresh
//! task (a child token of the run's token, a `TaskTracker`) and joins it in
//! [`Cameras::shutdown`].
//!
//! This layer sits below the outputs and above `ring`: it may import `ring`
//! (and `base`), never `media`, an output, `events` or `app`
//! (docs/ARCHITECTURE.md, Modules).

pub mod account;
pub mod directory;
pub mod login;
pub mod testutil;
pub mod urls;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument as _, info_span, warn};

use crate::base::login_limit::LoginLimiter;
use crate::ring::{RingApi, RingClient};

pub use account::{
    Account, AccountChange, AccountError, AccountOptions, AccountStatus, LoginAnswer, RingMode,
    TokenSource,
};
pub use directory::{Change, Changes, Directory, DirectoryOptions, Entry, Snapshot, slugify};
pub use login::{Credentials, LoginStep, login, login_client};
pub use urls::{PublicUrls, Urls};

/// How long [`Cameras::shutdown`] waits for its tasks.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// What [`Cameras::start`] needs besides Ring.
#[derive(Clone, Debug)]
pub struct CamerasOptions {
    /// The directory's refresh period and location filter.
    pub directory: DirectoryOptions,
    /// The public URLs as known at start-up (the RTSP port is set later with
    /// [`Urls::set_rtsp_port`]).
    pub urls: PublicUrls,
    /// The account service.
    pub account: AccountOptions,
}

/// The running camera services. Cheap handles ([`Directory`], [`Urls`]) are
/// cloned out of it; the component itself is shut down once.
pub struct Cameras {
    /// The live camera list.
    pub directory: Directory,
    /// Public URLs of this daemon.
    pub urls: Urls,
    /// The linked Ring account.
    pub account: Account,
    /// Turns `Some` at the first console login or unlink that took effect.
    pub account_changes: tokio::sync::watch::Receiver<Option<AccountChange>>,
    tracker: TaskTracker,
    cancel: CancellationToken,
}

impl Cameras {
    /// Starts the directory's refresh task (reading cameras from `ring`) under
    /// a child token of `cancel`. `client` is the running Ring client the
    /// account logs in and out with; `limiter` limits console logins and
    /// outlives the run.
    pub fn start(
        opts: CamerasOptions,
        ring: Arc<dyn RingApi>,
        client: RingClient,
        limiter: Arc<LoginLimiter>,
        cancel: &CancellationToken,
    ) -> Self {
        let cancel = cancel.child_token();
        let (account, account_changes) = Account::new(opts.account, client, limiter);
        let tracker = TaskTracker::new();
        let (directory, refresh) = Directory::new(ring, opts.directory, cancel.clone());
        tracker.spawn(refresh.instrument(info_span!("directory")));
        Cameras {
            directory,
            urls: Urls::new(opts.urls),
            account,
            account_changes,
            tracker,
            cancel,
        }
    }

    /// Stops the refresh task and joins it (bounded). Directory handles stay
    /// readable (the last list) but see no more changes.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.tracker.close();
        if tokio::time::timeout(SHUTDOWN_DEADLINE, self.tracker.wait())
            .await
            .is_err()
        {
            warn!("camera directory did not stop in time");
        }
    }
}
