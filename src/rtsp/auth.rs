//! [`ThrottledAuth`]: gst-rtsp-server's Basic authentication plus a per-client
//! backoff on wrong passwords. A client address that sent
//! [`super::RtspOptions::auth_failures_per_minute`] wrong passwords within a
//! minute is refused without its credentials being compared until its oldest
//! failure is a minute old; other clients, and requests without credentials
//! (every player's first try, answered with the challenge), are unaffected.
//!
//! The vfunc runs on a gst-rtsp-server client thread: it never blocks and never
//! panics. The first refusal per client is logged at INFO.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use gst::glib;
use gst_rtsp_server::subclass::prelude::*;
use gstreamer as gst;
use gstreamer_rtsp_server as gst_rtsp_server;
use tracing::info;

use super::client::peer_ip;
use crate::base::log_throttle::{LogThrottle, Verdict};
use crate::base::login_limit::{LoginLimiter, LoginLimits};

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct ThrottledAuth {
        pub(super) failures: OnceLock<LoginLimiter>,
        pub(super) log: OnceLock<LogThrottle>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for ThrottledAuth {
        const NAME: &'static str = "RingBridgeRtspAuth";
        type Type = super::ThrottledAuth;
        type ParentType = gst_rtsp_server::RTSPAuth;
    }

    impl ObjectImpl for ThrottledAuth {}

    impl RTSPAuthImpl for ThrottledAuth {
        fn authenticate(&self, ctx: &gst_rtsp_server::RTSPContext) -> bool {
            let (Some(failures), Some(ip)) = (self.failures.get(), ctx.client().and_then(peer_ip))
            else {
                return self.parent_authenticate(ctx);
            };
            if let Err(wait) = failures.check_ip(ip) {
                self.note(ip, wait);
                return false;
            }
            let given = ctx
                .request()
                .is_some_and(|r| !r.parse_auth_credentials().is_empty());
            // The parent sets the context's token when the credentials match.
            let ok = self.parent_authenticate(ctx);
            if given
                && ctx.token().is_none()
                && let Err(wait) = failures.record_failure(ip)
            {
                self.note(ip, wait);
            }
            ok
        }
    }

    impl ThrottledAuth {
        fn note(&self, ip: IpAddr, wait: Duration) {
            let Some(log) = self.log.get() else { return };
            if let Verdict::Log { suppressed } = log.check(&ip.to_string()) {
                info!(client = %ip, retry_in_s = wait.as_secs(), suppressed,
                    "RTSP client sent too many wrong passwords; refusing it for a while");
            }
        }
    }
}

glib::wrapper! {
    /// RTSP Basic authentication with a per-client backoff; see the module docs.
    pub struct ThrottledAuth(ObjectSubclass<imp::ThrottledAuth>)
        @extends gst_rtsp_server::RTSPAuth;
}

impl ThrottledAuth {
    /// Authentication allowing `per_minute` wrong passwords per client address.
    pub(crate) fn new(per_minute: usize) -> Self {
        let a: ThrottledAuth = glib::Object::new();
        // A fresh object: the cells are empty, so these cannot fail.
        let _ = a.imp().failures.set(LoginLimiter::new(LoginLimits {
            per_ip: per_minute.max(1),
            global: usize::MAX / 2,
            window: Duration::from_secs(60),
        }));
        let _ = a.imp().log.set(LogThrottle::new(Duration::from_secs(600)));
        a
    }
}
