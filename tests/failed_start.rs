//! A start-up that fails half-way (the RTSP port is taken) ends the real binary
//! promptly with a non-zero status, after the ordered shutdown of what it had
//! started (the demo simulator, the camera services, the media hub, browser
//! WebRTC) and before anything after RTSP (the embedded MQTT broker) starts.

mod common;
mod common_mqtt;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{base_env, bin};
use common_mqtt::free_port;

#[test]
fn rtsp_port_taken_exits_non_zero_after_stopping_what_started() {
    let state = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let rtsp_port = taken.local_addr().unwrap().port();
    let broker_port = free_port();
    let mut env = base_env(state.path());
    env.retain(|(k, _)| k != "MQTT_ENABLED" && k != "RTSP_PORT");
    env.push(("RTSP_PORT".into(), rtsp_port.to_string()));
    env.push(("MQTT_LOCAL_PORT".into(), broker_port.to_string()));

    let mut cmd = Command::new(bin());
    cmd.arg("run")
        .env_remove("RING_REFRESH_TOKEN")
        .env_remove("RING_SIMULATOR_URL")
        .env_remove("MQTT_URL")
        .env_remove("RING_BRIDGE_CONFIG")
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn ring-bridge");
    // Reading both pipes to the end waits for the exit; bound it by a watchdog
    // that kills the daemon if it hangs.
    let pid = child.id();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            return true;
        }
        false
    });
    let started = Instant::now();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap_or_default();
    let status = child.wait().expect("wait for ring-bridge");
    let elapsed = started.elapsed();
    let _ = done_tx.send(());
    let killed = watchdog.join().unwrap();
    let log = format!("{}{stderr}", reader.join().unwrap());

    assert!(!killed, "the daemon hung after the failed start-up:\n{log}");
    assert!(!status.success(), "exit status {status:?}:\n{log}");
    assert!(
        elapsed < Duration::from_secs(45),
        "took {elapsed:?} to give up:\n{log}"
    );
    let pos = |needle: &str| {
        log.find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in the log:\n{log}"))
    };
    // In order: the demo simulator came up, the run failed at RTSP, everything
    // was stopped, then the error reached the user.
    let sim = pos("demo mode: no Ring token found");
    let failed = pos("the run failed; stopping what it started");
    let stopped = pos("everything the failed run started has stopped");
    let error = pos("binding RTSP server to");
    assert!(sim < failed && failed < stopped && stopped < error, "{log}");
    assert!(log.contains(&rtsp_port.to_string()), "{log}");
    // Nothing after RTSP started: no embedded broker on its port.
    assert!(!log.contains("started the embedded MQTT broker"), "{log}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", broker_port)).is_err());
    drop(taken);
}
