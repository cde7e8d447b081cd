//! A Retina RTSP client for tests: describe, set up video, and stream frames
//! into a channel.
#![allow(dead_code)]

use std::time::Duration;

use futures::StreamExt as _;
use retina::client::{Credentials, PlayOptions, Session, SessionOptions, SetupOptions};
use retina::codec::{CodecItem, ParametersRef};
use tokio::sync::mpsc;

/// The daemon's RTSP URL for `path`, from the `rtsp_addr=` of its start-up log.
pub fn rtsp_url(d: &super::Daemon, path: &str) -> url::Url {
    let log = d.log_text();
    let i = log.find("rtsp_addr=").expect("rtsp_addr logged") + "rtsp_addr=".len();
    let addr: String = log[i..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    url::Url::parse(&format!("rtsp://{addr}/{path}")).unwrap()
}

/// Waits (bounded) until the daemon's RTSP server listens and has mounted the camera
/// paths: the mounts follow the camera list, which may load just after the listener.
pub fn wait_rtsp_ready(d: &super::Daemon) {
    let t = Duration::from_secs(40);
    assert!(
        d.wait_log("RTSP server listening", t) && d.wait_log("RTSP paths mounted", t),
        "{}",
        d.log_text()
    );
}

/// What a client saw in the SDP.
#[derive(Debug)]
pub struct Described {
    pub media: Vec<(String, String)>,
    pub video_size: Option<(u32, u32)>,
}

/// One received frame.
#[derive(Debug)]
pub struct Seen {
    pub video: bool,
    pub keyframe: bool,
    pub ts: i64,
    /// When the client got it.
    pub at: std::time::Instant,
}

pub async fn play(
    url: url::Url,
    creds: Option<Credentials>,
) -> Result<(Described, retina::client::Demuxed), retina::Error> {
    let mut session = Session::describe(url, SessionOptions::default().creds(creds)).await?;
    let mut described = Described {
        media: Vec::new(),
        video_size: None,
    };
    for s in session.streams() {
        described
            .media
            .push((s.media().to_owned(), s.encoding_name().to_ascii_lowercase()));
        if let Some(ParametersRef::Video(v)) = s.parameters() {
            described.video_size = Some(v.pixel_dimensions());
        }
    }
    // Retina 0.4 has no Opus depacketizer, so only video is set up; audio is checked
    // in the SDP here and end to end by ffprobe.
    for i in 0..session.streams().len() {
        if session.streams()[i].media() == "video" {
            session.setup(i, SetupOptions::default()).await?;
        }
    }
    let playing = session.play(PlayOptions::default()).await?;
    Ok((described, playing.demuxed()?))
}

/// Plays `url` in a task, forwarding every frame; the task ends when the receiver is
/// dropped (closing the connection).
pub async fn spawn_client(url: url::Url) -> (Described, mpsc::Receiver<Seen>) {
    let (described, mut demuxed) = tokio::time::timeout(Duration::from_secs(40), play(url, None))
        .await
        .expect("described in time")
        .expect("plays");
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(async move {
        while let Some(item) = demuxed.next().await {
            let seen = match item {
                Ok(CodecItem::VideoFrame(f)) => Seen {
                    video: true,
                    keyframe: f.is_random_access_point(),
                    ts: f.timestamp().elapsed(),
                    at: std::time::Instant::now(),
                },
                Ok(CodecItem::AudioFrame(f)) => Seen {
                    video: false,
                    keyframe: false,
                    ts: f.timestamp().elapsed(),
                    at: std::time::Instant::now(),
                },
                Ok(_) => continue,
                Err(e) => {
                    eprintln!("[rtsp client] stream ended: {e}");
                    break;
                }
            };
            if tx.send(seen).await.is_err() {
                break;
            }
        }
    });
    (described, rx)
}

/// The next video frame, or `None` when the client ended (bounded wait).
pub async fn try_next_video(rx: &mut mpsc::Receiver<Seen>) -> Option<Seen> {
    loop {
        let s = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("frame in time")?;
        if s.video {
            return Some(s);
        }
    }
}

pub async fn next_video(rx: &mut mpsc::Receiver<Seen>) -> Seen {
    loop {
        let s = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("frame in time")
            .expect("client still running");
        if s.video {
            return s;
        }
    }
}
