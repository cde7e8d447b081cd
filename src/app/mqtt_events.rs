//! Starts motion/ding intake (Ring push, with history polling as fallback) and the
//! MQTT bridge with Home Assistant discovery, and stops them last at shutdown
//! so MQTT reports `offline` only after the media has ended.
//!
//! Everything runs under a child token of the run's token and is joined through
//! one `TaskTracker`. The steps that can fail (finding or embedding a broker,
//! validating the MQTT options) run before any task starts, so a failed start
//! leaves nothing running.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::AppError;
use crate::base::Secret;
use crate::cameras::{Directory, Urls};
use crate::config::Config;
use crate::events::push::{PushHandle, PushOptions, PushRegistrar, TransportChoice};
use crate::events::{self, EventHub};
use crate::media::{Hub, Keeper};
use crate::mqtt::{self, HubStreams, MqttDeps, MqttHandle, MqttOptions};
use crate::ring::RingApi;
use crate::snapshot::LiveSnapshots;

/// The running intake and MQTT bridge.
#[allow(dead_code, reason = "read by the push wiring and status endpoints")]
pub struct MqttAndEvents {
    /// Where motion/ding events go (shared with every consumer).
    pub events: EventHub,
    /// The push path's status.
    pub push: PushHandle,
    /// The MQTT bridge, when enabled.
    pub mqtt: Option<MqttHandle>,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

/// What the outputs need from the rest of the daemon.
pub struct Deps {
    /// Ring.
    pub ring: Arc<dyn RingApi>,
    /// Camera list.
    pub directory: Directory,
    /// Media hub.
    pub hub: Hub,
    /// Bounded stream holds.
    pub keeper: Keeper,
    /// Public URLs.
    pub urls: Urls,
    /// Recorded-event selections (the `event_select` entity).
    pub replay: crate::events::replay::Replay,
    /// Ring push registration (the concrete Ring client).
    pub registrar: Arc<dyn PushRegistrar>,
    /// Where pushes come from: FCM for Ring, the simulator's channel otherwise.
    pub push: TransportChoice,
    /// State directory (push credentials).
    pub state_dir: std::path::PathBuf,
    /// Announcements, for the MQTT `announce` command.
    pub announce: crate::announce::Announcer,
}

impl MqttAndEvents {
    /// Starts the polling fallback, push and, if enabled, MQTT (embedding a
    /// broker on 127.0.0.1:1883 when no `MQTT_URL` is set and none listens
    /// there), all under a child token of `cancel`. On an error nothing was
    /// started.
    pub async fn start(
        cfg: &Config,
        deps: Deps,
        cancel: &CancellationToken,
    ) -> Result<MqttAndEvents, AppError> {
        let mqtt_opts = if cfg.mqtt.enabled {
            Some(mqtt_options(cfg, &deps.urls).await?)
        } else {
            info!("MQTT disabled by configuration");
            None
        };
        let cancel = cancel.child_token();
        let events = EventHub::default();
        let tasks = TaskTracker::new();
        let grace = cfg.events.push_watchdog_grace;
        let push_opts = PushOptions {
            watchdog_grace: grace,
            watchdog_interval: (grace / 4)
                .clamp(Duration::from_millis(250), Duration::from_secs(15)),
            reregister_backoff_min: grace.min(Duration::from_secs(10)),
            ..PushOptions::new(deps.state_dir.clone(), deps.push.clone())
        };
        let (push, push_task) = events::push::start(
            push_opts,
            deps.registrar.clone(),
            events.clone(),
            cancel.child_token(),
        );
        tasks.spawn(join_logged("push", push_task));
        let poll = events::poll::PollOptions {
            interval: cfg.events.poll_interval,
            healthy_interval: cfg.events.poll_interval_push_healthy,
            ..Default::default()
        };
        let poll_task = events::poll::start(
            poll,
            events::poll::PollDeps {
                ring: deps.ring.clone(),
                directory: deps.directory.clone(),
                hub: events.clone(),
            },
            cancel.child_token(),
        );
        tasks.spawn(join_logged("event polling", poll_task));

        let mqtt = mqtt_opts.map(|opts| {
            let streams = HubStreams::new(
                deps.hub.clone(),
                deps.keeper.clone(),
                deps.directory.clone(),
                deps.urls.clone(),
            );
            let (handle, join) = mqtt::start(
                opts,
                MqttDeps {
                    directory: deps.directory.clone(),
                    ring: deps.ring.clone(),
                    events: events.clone(),
                    stream: Some(Arc::new(streams)),
                    snapshots: Some(Arc::new(LiveSnapshots::new(deps.hub.clone()))),
                    push: Some(push.status()),
                    announce: Some(deps.announce.clone()),
                    replay: Some(deps.replay.clone()),
                },
                cancel.child_token(),
            );
            tasks.spawn(async move {
                match join.await {
                    Ok(Err(e)) => {
                        warn!(err = %crate::base::error::chain(&e), "MQTT bridge stopped")
                    }
                    Err(e) => warn!(err = %e, "MQTT bridge task failed"),
                    Ok(Ok(())) => {}
                }
            });
            handle
        });
        Ok(MqttAndEvents {
            events,
            push,
            mqtt,
            cancel,
            tasks,
        })
    }

    /// Stops intake and MQTT (which publishes `offline`), bounded.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.tasks.close();
        if tokio::time::timeout(SHUTDOWN_DEADLINE, self.tasks.wait())
            .await
            .is_err()
        {
            warn!("event intake and MQTT did not stop in time");
        }
    }
}

/// How long [`MqttAndEvents::shutdown`] waits for its tasks.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// Waits for a component's task and logs a panic.
async fn join_logged(what: &'static str, task: tokio::task::JoinHandle<()>) {
    if let Err(e) = task.await {
        warn!(err = %e, task = what, "task failed");
    }
}

/// The MQTT options: the broker (`MQTT_URL`, or a local one, embedded when none
/// listens) and `[mqtt]`, validated before a broker is embedded, so invalid
/// options start nothing.
async fn mqtt_options(cfg: &Config, urls: &Urls) -> Result<MqttOptions, AppError> {
    let local = SocketAddr::from(([127, 0, 0, 1], cfg.mqtt.local_port));
    let url = match &cfg.mqtt.url {
        Some(u) => u.clone(),
        None => Secret::new(format!("mqtt://{local}")),
    };
    let opts = MqttOptions {
        client_id: cfg.mqtt.client_id.clone(),
        ca_file: cfg.mqtt.ca_file.clone(),
        topic_prefix: cfg.mqtt.topic_prefix.clone(),
        discovery_prefix: cfg.mqtt.discovery_prefix.clone(),
        ha_status_topic: cfg.mqtt.ha_status_topic.clone(),
        instance: cfg.mqtt.instance.clone(),
        console_url: urls.get().console(),
        motion_duration: cfg.mqtt.motion_duration,
        ding_duration: cfg.mqtt.ding_duration,
        snapshot_interval_wired: cfg.mqtt.snapshot_interval_wired,
        snapshot_interval_battery: cfg.mqtt.snapshot_interval_battery,
        stream_max_duration: cfg.mqtt.stream_max_duration,
        stream_stats_interval: cfg.mqtt.stream_stats_interval,
        max_message_bytes: cfg.limits.mqtt_max_message_bytes,
        ..MqttOptions::new(url)
    };
    opts.validate()?;
    if cfg.mqtt.url.is_none() {
        let choice = mqtt::ensure_local(local).await?;
        if choice.is_embedded() {
            info!(broker = %choice.addr(), "no MQTT_URL: started an embedded MQTT broker");
        }
    }
    Ok(opts)
}
