//! A start-up that fails half-way stops and joins what it had started.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::AppError;
use super::carry::Carry;
use super::daemon::{Started, start_and_serve};
use super::restart::Restart;
use crate::rtsp::RtspError;

/// Demo mode on loopback with MQTT off and the RTSP port taken by `rtsp_port`'s
/// holder: start-up gets as far as RTSP.
fn demo_config(state: &std::path::Path, rtsp_port: u16) -> crate::config::Config {
    let vars = [
        (
            "RING_BRIDGE_STATE_DIR",
            state.to_str().expect("UTF-8 temp path"),
        ),
        ("LISTEN_IP", "127.0.0.1"),
        ("HTTP_PORT", "0"),
        ("RTSP_PORT", &rtsp_port.to_string()),
        ("MQTT_ENABLED", "false"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    crate::config::load_with_env(None, &vars).expect("valid test config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_start_stops_everything_it_started() {
    let state = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cfg = demo_config(state.path(), taken.local_addr().unwrap().port());
    let restart = Restart::new(CancellationToken::new());
    let mut carry = Carry::new();
    let mut started = Started::default();

    let r = tokio::time::timeout(
        Duration::from_secs(60),
        start_and_serve(&cfg, &mut carry, &restart, &mut started),
    )
    .await
    .expect("a failing start-up returns");
    assert!(
        matches!(r, Err(AppError::Rtsp(RtspError::Bind { .. }))),
        "{r:?}"
    );
    let sim = started.sim.as_ref().expect("demo simulator started").addr;
    let cameras = started.cameras.as_ref().expect("camera services started");
    assert!(started.hub.is_some() && started.keeper.is_some() && started.whep.is_some());
    assert!(started.rtsp.is_none() && started.outputs.is_none());
    let mut changes = cameras.directory.changes();
    tokio::net::TcpStream::connect(sim)
        .await
        .expect("the simulator serves until the shutdown");

    tokio::time::timeout(Duration::from_secs(30), started.shutdown(restart.token()))
        .await
        .expect("the shutdown is bounded");
    assert!(
        tokio::net::TcpStream::connect(sim).await.is_err(),
        "the demo simulator still accepts connections after the shutdown"
    );
    // The directory's refresh task was joined: its change stream has ended.
    tokio::time::timeout(Duration::from_secs(5), async {
        while changes.next().await.is_some() {}
    })
    .await
    .expect("the directory stopped");
}
