//! Where the Ring cloud lives: the real hosts of ring-api.md §0, or one base URL
//! (the simulator, or an in-test server) that serves every Ring path unchanged.
//!
//! This module only builds URLs; it does no I/O.

use url::Url;

/// Base URLs of every Ring service the client talks to. Every field except
/// [`RingHosts::oauth`] and [`RingHosts::signalling`] is a *base* ending in `/`
/// that relative paths are joined onto.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingHosts {
    /// Full URL of the OAuth token endpoint (`https://oauth.ring.com/oauth/token`).
    pub oauth: Url,
    /// `https://api.ring.com/clients_api/`.
    pub clients_api: Url,
    /// Device settings API, `https://api.ring.com/devices/v1/`.
    pub devices_api: Url,
    /// Commands API, `https://api.ring.com/commands/v1/` (not used yet).
    pub commands_api: Url,
    /// "App API" (tickets), `https://prd-api-us.prd.rings.solutions/api/v1/`.
    pub app_api: Url,
    /// Snapshot host base, `https://app-snaps.ring.com/`; snapshots are at
    /// `{snapshots}snapshots/next/{id}`.
    pub snapshots: Url,
    /// Event timeline, `https://api.ring.com/evm/v2/`.
    pub evm: Url,
    /// Live-view signalling websocket, `wss://api.prod.signalling.ring.devices.a2z.com:443/ws`
    /// (query parameters are added by `ring::live`).
    pub signalling: Url,
}

/// Parses a URL that is a compile-time constant.
fn constant(s: &str) -> Url {
    Url::parse(s).expect("constant Ring URL is valid")
}

impl RingHosts {
    /// The real Ring cloud (ring-api.md §0).
    pub fn real() -> Self {
        RingHosts {
            oauth: constant("https://oauth.ring.com/oauth/token"),
            clients_api: constant("https://api.ring.com/clients_api/"),
            devices_api: constant("https://api.ring.com/devices/v1/"),
            commands_api: constant("https://api.ring.com/commands/v1/"),
            app_api: constant("https://prd-api-us.prd.rings.solutions/api/v1/"),
            snapshots: constant("https://app-snaps.ring.com/"),
            evm: constant("https://api.ring.com/evm/v2/"),
            signalling: constant("wss://api.prod.signalling.ring.devices.a2z.com:443/ws"),
        }
    }

    /// Every service under one base URL with Ring's paths unchanged:
    /// `{base}/oauth/token`, `{base}/clients_api/…`, `{base}/devices/v1/…`,
    /// `{base}/commands/v1/…`, `{base}/api/v1/clap/ticket/…`,
    /// `{base}/snapshots/next/…`, `{base}/evm/v2/…` and the websocket at
    /// `ws://{host}/ws` (`wss` when `base` is `https`). A path in `base` is kept
    /// as a prefix of all of them.
    ///
    /// `base` must be a hierarchical URL (`http`/`https`); the config layer
    /// validates that. Panics otherwise (a programming error).
    pub fn simulator(base: &Url) -> Self {
        let mut base = base.clone();
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        base.set_query(None);
        base.set_fragment(None);
        let join = |p: &str| {
            base.join(p)
                .expect("simulator base URL must be hierarchical (http or https)")
        };
        let mut signalling = join("ws");
        let scheme = if base.scheme() == "https" {
            "wss"
        } else {
            "ws"
        };
        // Only fails for cannot-be-a-base URLs, which `join` above already rejected.
        let _ = signalling.set_scheme(scheme);
        RingHosts {
            oauth: join("oauth/token"),
            clients_api: join("clients_api/"),
            devices_api: join("devices/v1/"),
            commands_api: join("commands/v1/"),
            app_api: join("api/v1/"),
            snapshots: join(""),
            evm: join("evm/v2/"),
            signalling,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_hosts() {
        let h = RingHosts::real();
        assert_eq!(
            h.clients_api.join("ring_devices").unwrap().as_str(),
            "https://api.ring.com/clients_api/ring_devices"
        );
        assert_eq!(
            h.app_api
                .join("clap/ticket/request/signalsocket")
                .unwrap()
                .as_str(),
            "https://prd-api-us.prd.rings.solutions/api/v1/clap/ticket/request/signalsocket"
        );
        assert_eq!(
            h.snapshots.join("snapshots/next/1").unwrap().as_str(),
            "https://app-snaps.ring.com/snapshots/next/1"
        );
    }

    #[test]
    fn simulator_hosts() {
        let h = RingHosts::simulator(&Url::parse("http://127.0.0.1:8080").unwrap());
        assert_eq!(h.oauth.as_str(), "http://127.0.0.1:8080/oauth/token");
        assert_eq!(
            h.clients_api.join("session").unwrap().as_str(),
            "http://127.0.0.1:8080/clients_api/session"
        );
        assert_eq!(
            h.devices_api.join("locations").unwrap().as_str(),
            "http://127.0.0.1:8080/devices/v1/locations"
        );
        assert_eq!(
            h.evm.join("history/devices/5").unwrap().as_str(),
            "http://127.0.0.1:8080/evm/v2/history/devices/5"
        );
        assert_eq!(
            h.snapshots.join("snapshots/next/5").unwrap().as_str(),
            "http://127.0.0.1:8080/snapshots/next/5"
        );
        assert_eq!(
            h.app_api
                .join("clap/ticket/request/signalsocket")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8080/api/v1/clap/ticket/request/signalsocket"
        );
        assert_eq!(h.signalling.as_str(), "ws://127.0.0.1:8080/ws");

        let h = RingHosts::simulator(&Url::parse("https://sim.example/ring").unwrap());
        assert_eq!(h.oauth.as_str(), "https://sim.example/ring/oauth/token");
        assert_eq!(h.signalling.as_str(), "wss://sim.example/ring/ws");
    }
}
