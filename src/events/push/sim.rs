//! [`SimTransport`]: pushes from the simulator's push socket
//! (`GET {base}/_sim/push?token=…`, see `crate::sim` and `docs/SIMULATOR.md`).
//!
//! The simulator replaces only Google's FCM/MCS transport: each text frame is
//! an FCM message body (`{"data":{…}, "from", "fcmMessageId"}`) carrying
//! Ring's real payload shapes, and websocket pings are heartbeats. Everything
//! after the transport (registration with Ring, parsing, de-duplication) is the
//! same code path as with real FCM.

use futures::StreamExt as _;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

use super::transport::{PushConnection, PushError, PushItem, PushTransport, RawPush};

/// Options of the simulator transport.
#[derive(Clone, Debug)]
pub struct SimTransportOptions {
    /// The simulator's base URL (`http://127.0.0.1:PORT/`), as for
    /// [`crate::ring::RingHosts::simulator`].
    pub base_url: Url,
    /// Ask the simulator to send doorbell dings in the legacy v1 `gcmData`
    /// shape instead of v2. Default false.
    pub v1_dings: bool,
    /// Heartbeat (websocket ping) period the simulator should use, in ms.
    /// `None`: the simulator's default (30 s).
    pub heartbeat_ms: Option<u64>,
}

impl SimTransportOptions {
    /// v2 payloads, default heartbeat.
    pub fn new(base_url: Url) -> Self {
        SimTransportOptions {
            base_url,
            v1_dings: false,
            heartbeat_ms: None,
        }
    }
}

/// Pushes from the simulator. The push token is random per transport, and a
/// new one after [`PushTransport::reset`] (as fresh FCM credentials give): the
/// simulator only needs it to match what was registered with
/// `PATCH clients_api/device`.
#[derive(Debug)]
pub struct SimTransport {
    opts: SimTransportOptions,
    token: std::sync::Mutex<String>,
}

fn new_token() -> String {
    format!("sim-fcm-{}", uuid::Uuid::new_v4().simple())
}

impl SimTransport {
    /// A transport for the simulator at `opts.base_url`.
    pub fn new(opts: SimTransportOptions) -> Self {
        SimTransport {
            opts,
            token: std::sync::Mutex::new(new_token()),
        }
    }

    /// The socket URL without the token (for logs and errors).
    fn public_url(&self) -> Url {
        let mut u = self.opts.base_url.clone();
        let scheme = if u.scheme() == "https" { "wss" } else { "ws" };
        // Only fails for URLs that cannot be a base; the config layer rejects those.
        let _ = u.set_scheme(scheme);
        let path = format!("{}_sim/push", ensure_slash(u.path()));
        u.set_path(&path);
        u.set_query(None);
        u.set_fragment(None);
        u
    }

    fn current_token(&self) -> String {
        self.token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn socket_url(&self) -> Url {
        let mut u = self.public_url();
        {
            let mut q = u.query_pairs_mut();
            q.append_pair("token", &self.current_token());
            if self.opts.v1_dings {
                q.append_pair("v1_dings", "true");
            }
            if let Some(ms) = self.opts.heartbeat_ms {
                q.append_pair("heartbeat_ms", &ms.to_string());
            }
        }
        u
    }
}

fn ensure_slash(p: &str) -> String {
    if p.ends_with('/') {
        p.to_owned()
    } else {
        format!("{p}/")
    }
}

#[async_trait::async_trait]
impl PushTransport for SimTransport {
    fn name(&self) -> &'static str {
        "simulator"
    }

    async fn token(&self) -> Result<String, PushError> {
        Ok(self.current_token())
    }

    /// A new random token, as a fresh FCM registration would give.
    async fn reset(&self) -> Result<(), PushError> {
        *self
            .token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = new_token();
        Ok(())
    }

    async fn connect(&self) -> Result<Box<dyn PushConnection>, PushError> {
        let public = self.public_url().to_string();
        match tokio_tungstenite::connect_async(self.socket_url().as_str()).await {
            Ok((ws, _)) => Ok(Box::new(SimConnection { ws })),
            Err(tungstenite::Error::Http(resp)) => Err(PushError::Refused {
                url: public,
                status: resp.status().as_u16(),
            }),
            Err(e) => Err(PushError::Connect {
                url: public,
                source: Box::new(e),
            }),
        }
    }
}

/// One simulator push socket.
struct SimConnection {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

#[async_trait::async_trait]
impl PushConnection for SimConnection {
    async fn next(&mut self) -> Result<Option<PushItem>, PushError> {
        loop {
            let Some(msg) = self.ws.next().await else {
                return Ok(None);
            };
            match msg.map_err(|e| PushError::Socket {
                source: Box::new(e),
            })? {
                Message::Text(t) => {
                    let v: serde_json::Value =
                        serde_json::from_str(t.as_str()).map_err(|e| PushError::Protocol {
                            detail: format!("frame is not JSON: {e}"),
                        })?;
                    let raw = RawPush::from_fcm_body(&v).ok_or_else(|| PushError::Protocol {
                        detail: "frame has no `data` object".into(),
                    })?;
                    return Ok(Some(PushItem::Message(raw)));
                }
                // tungstenite queues the pong itself; it goes out with the next read.
                Message::Ping(_) => return Ok(Some(PushItem::Heartbeat)),
                Message::Close(_) => return Ok(None),
                Message::Pong(_) | Message::Binary(_) | Message::Frame(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_url_keeps_base_path_and_hides_token_in_public_url() {
        let t = SimTransport::new(SimTransportOptions {
            base_url: Url::parse("http://127.0.0.1:9/prefix").unwrap(),
            v1_dings: true,
            heartbeat_ms: Some(100),
        });
        let public = t.public_url().to_string();
        assert_eq!(public, "ws://127.0.0.1:9/prefix/_sim/push");
        let full = t.socket_url();
        let q: Vec<(String, String)> = full.query_pairs().into_owned().collect();
        assert_eq!(q[0].0, "token");
        assert!(q[0].1.starts_with("sim-fcm-"));
        assert!(q.contains(&("v1_dings".into(), "true".into())));
        assert!(q.contains(&("heartbeat_ms".into(), "100".into())));
    }
}
