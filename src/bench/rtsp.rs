//! An RTSP viewer (Retina, interleaved TCP): DESCRIBE, SETUP video, PLAY, then
//! every video access unit goes to the viewer's [`ViewerLog`] with the stamp
//! found in it.

use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt as _;
use retina::client::{PlayOptions, Session, SessionOptions, SetupOptions};
use retina::codec::CodecItem;
use tokio_util::sync::CancellationToken;

use super::viewer::SharedLog;
use crate::sim::live::stamp::{find_stamp_avc, realtime_ns};

/// Longest wait for DESCRIBE..PLAY (the daemon holds DESCRIBE until Ring's
/// first key frame).
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Plays `url` until `cancel`, recording into `log`. `log.started` should be
/// (re)set by the caller right before this is called.
pub async fn run_viewer(url: url::Url, log: SharedLog, cancel: CancellationToken) {
    let result = tokio::select! {
        r = play(url, &log) => r,
        _ = cancel.cancelled() => Ok(()),
    };
    if let Err(e) = result
        && !cancel.is_cancelled()
        && let Ok(mut l) = log.lock()
    {
        l.on_error(&e);
    }
}

async fn play(url: url::Url, log: &SharedLog) -> anyhow::Result<()> {
    let mut demuxed = tokio::time::timeout(SETUP_TIMEOUT, async {
        let mut session = Session::describe(
            url.clone(),
            SessionOptions::default().user_agent("ring-bridge-bench".into()),
        )
        .await
        .with_context(|| format!("DESCRIBE {url}"))?;
        let video = session
            .streams()
            .iter()
            .position(|s| s.media() == "video")
            .context("no video stream in the SDP")?;
        if let Ok(mut l) = log.lock() {
            l.codec = Some(
                session.streams()[video]
                    .encoding_name()
                    .to_ascii_lowercase(),
            );
        }
        session
            .setup(video, SetupOptions::default())
            .await
            .context("SETUP")?;
        let playing = session.play(PlayOptions::default()).await.context("PLAY")?;
        playing.demuxed().context("demuxing")
    })
    .await
    .context("RTSP set-up timed out")??;
    while let Some(item) = demuxed.next().await {
        match item.context("RTSP stream")? {
            CodecItem::VideoFrame(f) => {
                let now = realtime_ns();
                let stamp = find_stamp_avc(f.data());
                if let Ok(mut l) = log.lock() {
                    l.on_frame(f.is_random_access_point(), f.data().len(), stamp, now);
                }
            }
            _ => continue,
        }
    }
    anyhow::bail!("the RTSP stream ended")
}
