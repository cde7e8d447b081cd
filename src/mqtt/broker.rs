//! The zero-configuration default: use a broker on the local machine, or start
//! an embedded one.
//!
//! [`ensure_local`] probes the address; if something accepts TCP there it is
//! used as is, otherwise an embedded [rumqttd](https://docs.rs/rumqttd) broker
//! (MQTT 3.1.1, no authentication, no TLS) is started on it. Bind it to a
//! loopback address only. rumqttd has no stop API: the embedded broker lives
//! until the process exits, on its own threads.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tracing::info;

use super::Error;
use crate::base::Secret;

/// How long the probe waits for an existing broker to accept.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// How long the embedded broker may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest publish the embedded broker accepts (snapshot JPEGs).
const MAX_PAYLOAD: usize = 4 * 1024 * 1024;

/// An embedded rumqttd broker running on its own threads.
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
    _thread: std::thread::JoinHandle<()>,
}

/// Which broker [`ensure_local`] settled on.
#[derive(Debug)]
pub enum BrokerChoice {
    /// Something already listened on the address; it is used as is.
    Existing(SocketAddr),
    /// ring-bridge started an embedded broker on the address.
    Embedded(EmbeddedBroker),
}

impl BrokerChoice {
    /// The broker's address.
    pub fn addr(&self) -> SocketAddr {
        match self {
            BrokerChoice::Existing(a) => *a,
            BrokerChoice::Embedded(b) => b.addr,
        }
    }

    /// Whether ring-bridge runs this broker itself.
    pub fn is_embedded(&self) -> bool {
        matches!(self, BrokerChoice::Embedded(_))
    }

    /// `mqtt://host:port` for [`super::MqttOptions::url`].
    pub fn url(&self) -> Secret<String> {
        Secret::new(format!("mqtt://{}", self.addr()))
    }
}

async fn accepts(addr: SocketAddr) -> bool {
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// MQTT 3.1.1 CONNECT (clean session, keep-alive 10 s, client id
/// `ring-bridge-probe`).
const PROBE_CONNECT: &[u8] = b"\x10\x1d\x00\x04MQTT\x04\x02\x00\x0a\x00\x11ring-bridge-probe";

/// Whether an MQTT broker answers a CONNECT on `addr` with CONNACK. The
/// embedded broker's readiness check. A bare TCP connect would make rumqttd
/// log an aborted handshake at ERROR, and so would a DISCONNECT packet (it
/// handles the packet and the closed socket as two disconnections); a CONNECT
/// followed by closing the socket is logged as an ordinary disconnection.
async fn answers_mqtt(addr: SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(PROBE_CONNECT).await?;
        let mut ack = [0u8; 4];
        s.read_exact(&mut ack).await?;
        std::io::Result::Ok(ack[0] == 0x20)
    };
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, exchange).await,
        Ok(Ok(true))
    )
}

fn config(addr: SocketAddr) -> rumqttd::Config {
    let connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: MAX_PAYLOAD,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = rumqttd::ServerSettings {
        name: "ring-bridge-embedded".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: 1000,
            max_outgoing_packet_count: 200,
            max_segment_size: 2 * MAX_PAYLOAD,
            max_segment_count: 4,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: rumqttd::Strategy::default(),
        },
        v4: Some(HashMap::from([("embedded".to_string(), server)])),
        ..rumqttd::Config::default()
    }
}

/// Uses the broker listening on `addr`, or starts an embedded one there.
///
/// The daemon calls it with `127.0.0.1:1883` when no `mqtt.url` is configured;
/// tests pass a free port. Fails if nothing listens and the embedded broker
/// cannot bind or does not come up within 5 s.
pub async fn ensure_local(addr: SocketAddr) -> Result<BrokerChoice, Error> {
    if accepts(addr).await {
        info!(%addr, "using the MQTT broker already listening there");
        return Ok(BrokerChoice::Existing(addr));
    }
    let embedded_err = |message: String| Error::EmbeddedBroker { addr, message };
    // Bind once ourselves for a clear error (rumqttd would only log it).
    drop(std::net::TcpListener::bind(addr).map_err(|e| embedded_err(e.to_string()))?);
    let cfg = config(addr);
    let thread = std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(cfg);
            if let Err(e) = broker.start() {
                tracing::error!(err = %e, "embedded MQTT broker stopped");
            }
        })
        .map_err(|e| embedded_err(e.to_string()))?;
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        if answers_mqtt(addr).await {
            break;
        }
        if thread.is_finished() {
            return Err(embedded_err("broker thread exited (see log)".into()));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(embedded_err("not listening after 5 s".into()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    info!(%addr, "started the embedded MQTT broker (no authentication; loopback use only)");
    Ok(BrokerChoice::Embedded(EmbeddedBroker {
        addr,
        _thread: thread,
    }))
}
