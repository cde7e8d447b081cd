//! The connection task: the only code that polls the rumqttc `EventLoop`.
//!
//! It forwards ConnAcks, connection losses and incoming publishes to the
//! bridge task and reconnects with jittered exponential backoff, so a broker
//! that is down never causes a tight loop (rumqttc #703). It exits when it
//! sends our DISCONNECT (clean shutdown) or when `stop` fires. It never logs the
//! broker URL or credentials.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rumqttc::tokio_rustls::rustls;
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, Outgoing, Packet, QoS, Transport};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{Error, MqttOptions};
use crate::base::Secret;

/// Capacity of the client's request channel: a full republish (discovery plus
/// state of dozens of cameras) must fit without blocking.
pub(crate) const REQUEST_CAPACITY: usize = 4096;
/// Largest publish we send (snapshot JPEGs).
const MAX_OUTGOING: usize = 16 * 1024 * 1024;
/// System CA bundles tried for `mqtts://` without `ca_file`.
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// The broker address and credentials parsed from the URL.
pub(crate) struct BrokerTarget {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub credentials: Option<(String, Secret<String>)>,
}

impl BrokerTarget {
    /// Parses `mqtt://[user:pass@]host[:port]` / `mqtts://...` (also `tcp`, `ssl`).
    pub(crate) fn parse(url: &Secret<String>) -> Result<BrokerTarget, Error> {
        let u = url::Url::parse(url.expose()).map_err(|e| Error::InvalidUrl(e.to_string()))?;
        let tls = match u.scheme() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            other => return Err(Error::InvalidUrl(format!("scheme {other:?} not supported"))),
        };
        let host = u
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Error::InvalidUrl("no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = u.port().unwrap_or(if tls { 8883 } else { 1883 });
        let decode = |s: &str| {
            percent_decode(s)
                .ok_or_else(|| Error::InvalidUrl("bad percent-encoding in user info".into()))
        };
        let credentials = if u.username().is_empty() {
            None
        } else {
            let user = decode(u.username())?;
            let pass = decode(u.password().unwrap_or(""))?;
            Some((user, Secret::new(pass)))
        };
        Ok(BrokerTarget {
            host,
            port,
            tls,
            credentials,
        })
    }

    /// `host:port`, safe to log.
    pub(crate) fn display(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn tls_transport(opts: &MqttOptions) -> Result<Transport, Error> {
    let (path, pem) = match &opts.ca_file {
        Some(p) => {
            let pem = std::fs::read(p).map_err(|e| Error::Tls {
                path: p.clone(),
                message: e.to_string(),
            })?;
            (p.clone(), pem)
        }
        None => SYSTEM_CA_BUNDLES
            .iter()
            .find_map(|p| std::fs::read(p).ok().map(|pem| (p.into(), pem)))
            .ok_or_else(|| Error::Tls {
                path: SYSTEM_CA_BUNDLES[0].into(),
                message: "no system CA bundle found; set ca_file".into(),
            })?,
    };
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
        // Unusual certificates in a system bundle are skipped, as browsers do.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(Error::Tls {
            path,
            message: "no usable PEM certificate".into(),
        });
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls {
            path: path.clone(),
            message: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Transport::tls_with_config(config.into()))
}

/// Unacknowledged QoS 1 publishes in flight at once.
const INFLIGHT: u16 = 1024;

/// Builds the client and its event loop, with the LWT `offline` (retained) on
/// `lwt_topic`.
pub(crate) fn client(
    opts: &MqttOptions,
    target: &BrokerTarget,
    lwt_topic: &str,
) -> Result<(AsyncClient, EventLoop), Error> {
    let mut o = rumqttc::MqttOptions::new(opts.client_id.clone(), target.host.clone(), target.port);
    o.set_keep_alive(opts.keep_alive.max(Duration::from_secs(1)));
    o.set_clean_session(true);
    o.set_max_packet_size(super::MAX_INCOMING_PACKET, MAX_OUTGOING);
    // Every ConnAck republishes discovery and state for all entities at QoS 1
    // in one burst. With rumqttc's default window (100) the packet ids wrapped
    // before the first acks came back ("Collision on packet id = 1") and the
    // loop stalled on the collision; the window covers the burst instead.
    o.set_inflight(INFLIGHT);
    o.set_last_will(LastWill::new(lwt_topic, "offline", QoS::AtLeastOnce, true));
    if let Some((user, pass)) = &target.credentials {
        o.set_credentials(user.clone(), pass.expose().clone());
    }
    if target.tls {
        o.set_transport(tls_transport(opts)?);
    }
    Ok(AsyncClient::new(o, REQUEST_CAPACITY))
}

/// What the connection task tells the bridge.
#[derive(Debug)]
pub(crate) enum NetEvent {
    /// A ConnAck: (re)publish everything.
    Connected,
    /// The connection was lost or could not be made.
    Disconnected(String),
    /// A publish on a subscribed topic; `retain` is the flag as delivered (set
    /// for retained messages replayed on subscribe).
    Message {
        topic: String,
        payload: Bytes,
        retain: bool,
    },
}

/// Jittered exponential backoff: `min`, 2·`min`, 4·`min`, ... capped at `max`, ±25 %.
pub(crate) fn backoff(failures: u32, min: Duration, max: Duration) -> Duration {
    let exp = min.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    let jitter = 0.75 + rand::random::<f64>() * 0.5;
    exp.min(max).mul_f64(jitter)
}

/// Polls `eventloop` until our DISCONNECT went out or `stop` fires.
pub(crate) async fn run(
    mut eventloop: EventLoop,
    tx: mpsc::Sender<NetEvent>,
    broker: String,
    reconnect: (Duration, Duration),
    stop: CancellationToken,
) {
    let mut failures: u32 = 0;
    loop {
        let ev = tokio::select! {
            _ = stop.cancelled() => break,
            ev = eventloop.poll() => ev,
        };
        let forward = match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                if failures > 0 {
                    info!(broker = %broker, after_failures = failures, "reconnected to MQTT broker");
                } else {
                    info!(broker = %broker, "connected to MQTT broker");
                }
                failures = 0;
                Some(NetEvent::Connected)
            }
            Ok(Event::Incoming(Packet::Publish(p))) => Some(NetEvent::Message {
                topic: p.topic,
                payload: p.payload,
                retain: p.retain,
            }),
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                debug!("sent DISCONNECT");
                break;
            }
            Ok(_) => None,
            Err(e) => {
                failures = failures.saturating_add(1);
                let wait = backoff(failures, reconnect.0, reconnect.1);
                let msg = e.to_string();
                if failures == 1 || failures.is_multiple_of(10) {
                    warn!(broker = %broker, err = %msg, failures, retry_in = ?wait, "MQTT connection failed");
                } else {
                    debug!(broker = %broker, err = %msg, failures, retry_in = ?wait, "MQTT connection failed");
                }
                if tx.send(NetEvent::Disconnected(msg)).await.is_err() {
                    break;
                }
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(wait) => {}
                }
                None
            }
        };
        if let Some(f) = forward
            && tx.send(f).await.is_err()
        {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<BrokerTarget, Error> {
        BrokerTarget::parse(&Secret::new(s.to_string()))
    }

    #[test]
    fn urls() {
        let t = parse("mqtt://user:p%40ss@broker.lan").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.tls),
            ("broker.lan", 1883, false)
        );
        let (u, p) = t.credentials.unwrap();
        assert_eq!((u.as_str(), p.expose().as_str()), ("user", "p@ss"));
        let t = parse("mqtts://[::1]").unwrap();
        assert_eq!((t.display(), t.tls), ("[::1]:8883".to_string(), true));
        assert!(parse("http://x").is_err());
        assert!(parse("mqtt://").is_err());
        let e = parse("mqtt://u:secret@host:99999")
            .err()
            .unwrap()
            .to_string();
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(60));
        assert!(backoff(1, min, max) <= Duration::from_millis(1250));
        assert!(backoff(1, min, max) >= Duration::from_millis(750));
        assert!(backoff(4, min, max) >= Duration::from_secs(6));
        assert!(backoff(40, min, max) <= Duration::from_secs(75));
    }
}
