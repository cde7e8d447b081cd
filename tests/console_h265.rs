//! The browser console and an H.265 camera: Chromium (Debian's build) gets a clear
//! error in the tile instead of a black picture (`docs/design/0009-h265.md`).

mod browser;
mod common;

use std::time::Duration;

use common::{Sim, daemon_on};
use ring_bridge::sim::SimOptions;
use ring_bridge::sim::live::LiveSimOptions;

#[tokio::test(flavor = "multi_thread")]
async fn h265_camera_tile_explains_instead_of_staying_black() {
    let sim = Sim::start_with(SimOptions {
        live: LiveSimOptions {
            width: 640,
            height: 360,
            gop_secs: 1,
            ..LiveSimOptions::default()
        },
        ..SimOptions::default()
    })
    .await;
    let state = tempfile::tempdir().unwrap();
    let d = daemon_on(
        &sim,
        state.path(),
        "[stream]\nlinger = \"2s\"\nh265 = true\n",
        &[],
    )
    .await;
    assert!(
        d.wait_log("camera list loaded", Duration::from_secs(30)),
        "{}",
        d.log_text()
    );
    let details =
        tokio::task::block_in_place(|| browser::run_scenario("live_h265", &d.url("/"), &sim.url()));
    assert!(
        details["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("H.265"),
        "{details}"
    );
    assert_eq!(details["codec"], "H.265", "{details}");
    // Ring's side was H.265 (the refusal is about the browser leg only).
    assert!(d.log_text().contains("video=h265"), "{}", d.log_text());
}
