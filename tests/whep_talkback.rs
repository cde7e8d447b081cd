//! WHEP talkback end to end with the explicit floor (`webrtc.talk_floor =
//! "explicit"`): a viewer takes the talk floor and sends a real Opus sine on its
//! audio track; the simulated camera decodes it (packets and energy in
//! `/_sim/state`). Audio without the floor is not forwarded, however loud. One
//! talker per camera: a second viewer gets 409. (The voice floor: `whep_aiortc.rs`.)

mod common;
mod whep_support;

use std::time::Duration;

use common::{Daemon, Sim, daemon_on, get_json, wait_for};
use whep_support::{ClientOpts, connect, opus_sine};

async fn daemon(sim: &Sim, state: &std::path::Path) -> Daemon {
    let config = "[stream]\nlinger = \"2s\"\n\n[rtsp]\nenabled = false\n\n\
        [webrtc]\ntalk_floor = \"explicit\"\n";
    daemon_on(sim, state, config, &[]).await
}

/// `(packets, energy)` the simulated camera 10001 received as talkback.
async fn talkback(sim: &Sim) -> (u64, f64) {
    let s = sim.state().await;
    let t = &s["talkback"]["10001"];
    (
        t["packets"].as_u64().unwrap_or(0),
        t["energy"].as_f64().unwrap_or(0.0),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn talk_floor_and_opus_talkback_reach_the_camera() {
    let sim = Sim::start().await;
    let state = tempfile::tempdir().unwrap();
    let d = daemon(&sim, state.path()).await;
    let base = format!("http://{}", d.http);
    let sine = tokio::task::block_in_place(|| opus_sine(Duration::from_millis(1500)));

    let mut a = connect(&base, "front-door", ClientOpts::default()).await;
    let mut b = connect(&base, "10001", ClientOpts::default()).await;
    for c in [&mut a, &mut b] {
        c.wait_connected(Duration::from_secs(20)).await;
        c.next_frame(Duration::from_secs(30)).await;
    }

    // Without the floor nothing is forwarded, not even a loud sine.
    a.send_opus(&sine[..25]).await;
    assert_eq!(talkback(&sim).await.0, 0, "no floor, no talkback");

    // A takes the floor; B is refused; the state says who talks.
    assert_eq!(
        a.talk(true).await,
        (200, serde_json::json!({"talking": true}))
    );
    let (st, body) = b.talk(true).await;
    assert_eq!(st, 409, "{body}");
    assert_eq!(body["error"], "failed_precondition");
    assert_eq!(body["message"], "someone else is talking on front-door");
    let a_id = a.location.rsplit('/').next().unwrap().to_owned();
    let (_, talk) = get_json(&format!("{base}/api/webrtc/front-door/talk")).await;
    assert_eq!(
        talk,
        serde_json::json!({"talking": true, "session": a_id, "by": "explicit"})
    );

    // A's sine reaches the camera speaker: packets counted and decoded loud.
    a.send_opus(&sine).await;
    let heard = wait_for(Duration::from_secs(10), || async {
        let (packets, energy) = talkback(&sim).await;
        (packets >= (sine.len() as u64) / 2 && energy > 0.05).then_some((packets, energy))
    })
    .await;
    let (packets, energy) = talkback(&sim).await;
    assert!(
        heard.is_some(),
        "camera heard {packets} packets, energy {energy}:\n{}",
        d.log_text()
    );
    assert!(
        packets <= sine.len() as u64,
        "only floor-holder packets: {packets}"
    );

    // Released: B may talk now; A's DELETE does not take B's floor away.
    assert_eq!(
        a.talk(false).await,
        (200, serde_json::json!({"talking": false}))
    );
    assert_eq!(b.talk(true).await.0, 200);
    assert_eq!(a.delete().await, 200);
    let (_, talk) = get_json(&format!("{base}/api/webrtc/10001/talk")).await;
    assert_eq!(talk["talking"], true, "{talk}");
    // B's DELETE releases the floor.
    assert_eq!(b.delete().await, 200);
    let (_, talk) = get_json(&format!("{base}/api/webrtc/front-door/talk")).await;
    assert_eq!(talk, serde_json::json!({"talking": false, "session": null}));
    a.close().await;
    b.close().await;
}
