//! Tests of the pump: candidates it gathers and trickles.
use std::net::{IpAddr, Ipv4Addr};

use tokio::sync::Notify;
use tokio_util::task::TaskTracker;

use super::*;

/// A STUN server that answers every binding request with `mapped`
/// (XOR-MAPPED-ADDRESS, encoded here from RFC 8489, not by our client).
async fn fake_stun(mapped: SocketAddr) -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            if n < 20 || buf[0..2] != [0, 1] {
                continue;
            }
            let SocketAddr::V4(v4) = mapped else { return };
            let port = (v4.port() ^ 0x2112).to_be_bytes();
            let ip: Vec<u8> = v4
                .ip()
                .octets()
                .iter()
                .zip([0x21, 0x12, 0xA4, 0x42])
                .map(|(a, k)| a ^ k)
                .collect();
            let mut m = vec![0x01, 0x01, 0, 12, 0x21, 0x12, 0xA4, 0x42];
            m.extend_from_slice(&buf[8..20]);
            m.extend_from_slice(&[0x00, 0x20, 0, 8, 0, 1, port[0], port[1]]);
            m.extend_from_slice(&ip);
            let _ = sock.send_to(&m, from).await;
        }
    });
    addr
}

async fn next_candidate(h: &mut PumpHandle) -> String {
    match tokio::time::timeout(Duration::from_secs(10), h.events.recv()).await {
        Ok(Some(PeerEvent::Candidate(line))) => line,
        other => panic!("expected a candidate, got {other:?}"),
    }
}

#[tokio::test]
async fn trickles_host_then_server_reflexive_candidates() {
    let public: SocketAddr = "203.0.113.7:40000".parse().unwrap();
    let server = fake_stun(public).await;
    let opts = LiveOptions {
        ice_servers: vec![format!("stun:{server}"), "turn:ignored.example".into()],
        ice_ips: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        include_loopback: true,
        ..LiveOptions::default()
    };
    let media = Arc::new(MediaShared {
        frames_tx: mpsc::channel(8).0,
        start: Instant::now(),
        pli: Notify::new(),
        tasks: TaskTracker::new(),
        cancel: CancellationToken::new(),
        span: tracing::Span::none(),
        transport: Arc::default(),
    });
    let offered = super::super::peer::offer(&opts, Instant::now()).unwrap();
    let mut handle = start(&opts, offered, Arc::clone(&media), mpsc::channel(1).1).unwrap();
    let host = next_candidate(&mut handle).await;
    assert!(
        host.starts_with("candidate:") && host.contains("127.0.0.1") && host.contains("typ host"),
        "{host}"
    );
    let srflx = next_candidate(&mut handle).await;
    // str0m hides the base address (raddr 0.0.0.0), as browsers do.
    assert!(srflx.contains("203.0.113.7 40000 typ srflx"), "{srflx}");
    drop(handle);
    media.tasks.close();
    tokio::time::timeout(Duration::from_secs(5), media.tasks.wait())
        .await
        .expect("the pump stops with its handle");
}
