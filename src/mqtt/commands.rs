//! HA commands: ON/OFF for light, siren, motion detection and the live
//! stream, PRESS for the snapshot button, text (or the JSON of `POST
//! …/announce`) for announcements, an option for `event_select` (handled in
//! `replay`). Ring calls and announcements run in the bridge's `JoinSet`; their
//! results are reflected back as state or logged.

use super::bridge::{Bridge, Done, RING_CALL_TIMEOUT};
use super::entities::keys;
use super::state::Trigger;
use super::stream::StreamStatus;
use super::topics::Leaf;
use crate::base::CameraId;
use crate::base::error::chain;
use tracing::{debug, info, warn};

/// A switch command's payload: `ON` / `OFF` in any case, surrounding space
/// ignored; anything else is `None`.
pub(super) fn switch_payload(text: &str) -> Option<bool> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("ON") {
        Some(true)
    } else if t.eq_ignore_ascii_case("OFF") {
        Some(false)
    } else {
        None
    }
}

impl Bridge {
    /// Handles a message on a subscribed topic (`retain` as delivered). Oversized
    /// messages and retained commands are dropped first (`intake`).
    pub(super) fn on_message(&mut self, topic: &str, payload: &[u8], retain: bool) {
        let cmd = self.topics.parse_command(topic);
        if !self
            .intake
            .admit(topic, payload.len(), retain, cmd.is_some())
        {
            return;
        }
        let text = String::from_utf8_lossy(payload);
        let text = text.trim();
        if topic == self.topics.ha_status() {
            if text == "online" {
                info!("Home Assistant came online; republishing discovery and state");
                self.published.clear();
                self.publish_all();
            }
            return;
        }
        let Some(cmd) = cmd else {
            debug!(topic = %topic, "ignoring message on unexpected topic");
            return;
        };
        let Some(cam) = self
            .cameras
            .iter()
            .find(|e| e.camera.device_id.eq_ignore_ascii_case(&cmd.device_id))
            .map(|e| e.camera.clone())
        else {
            self.intake.warn("unknown camera", |suppressed| {
                warn!(topic = %topic, suppressed, "command for an unknown camera ignored");
            });
            return;
        };
        let shown: String = text.chars().take(40).collect();
        if cmd.key == keys::EVENT_SELECT && cam.recordings_enabled {
            self.event_select_command(cam.id, text);
            return;
        }
        let on = switch_payload(text);
        let key = match cmd.key.as_str() {
            keys::LIGHT if cam.has_light => keys::LIGHT,
            keys::SIREN if cam.has_siren => keys::SIREN,
            keys::MOTION_DETECTION if !cam.shared => keys::MOTION_DETECTION,
            keys::STREAM => keys::STREAM,
            keys::ANNOUNCE => {
                self.announce_command(&cam, text);
                return;
            }
            keys::TAKE_SNAPSHOT => {
                if text.eq_ignore_ascii_case("PRESS") {
                    self.trigger_snapshot(cam.id, Trigger::OnDemand);
                } else {
                    self.intake.warn(&format!("bad press {}", cam.id), |suppressed| {
                        warn!(camera = %cam.id, payload = %shown, suppressed, "take_snapshot expects PRESS; ignored");
                    });
                }
                return;
            }
            other => {
                self.intake.warn(&format!("no entity {}", cam.id), |suppressed| {
                    warn!(camera = %cam.id, key = %other, suppressed, "command for an entity this camera lacks; ignored");
                });
                return;
            }
        };
        let Some(on) = on else {
            self.intake.warn(&format!("bad payload {}", cam.id), |suppressed| {
                warn!(camera = %cam.id, key, payload = %shown, suppressed, "command payload must be ON or OFF; ignored");
            });
            return;
        };
        info!(camera = %cam.id, name = %cam.name, key, on, "command from MQTT");
        if key == keys::STREAM {
            self.stream_command(cam.id, on);
            return;
        }
        let ring = self.deps.ring.clone();
        let id = cam.id;
        self.tasks.spawn(async move {
            let call = async {
                match key {
                    keys::LIGHT => ring.set_light(id, on).await,
                    keys::SIREN => ring.set_siren(id, on).await,
                    _ => ring.set_motion_detection(id, on).await,
                }
            };
            let result = match tokio::time::timeout(RING_CALL_TIMEOUT, call).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(chain(&e)),
                Err(_) => Err("Ring did not answer in time".to_string()),
            };
            Done::Switch {
                camera_id: id,
                key,
                on,
                result,
            }
        });
    }

    /// An announcement: plain text is spoken in [`crate::announce::DEFAULT_LANG`];
    /// a JSON object is the body of `POST …/announce` (`text`/`lang` or `url`,
    /// `volume`, `wait_s`).
    fn announce_command(&mut self, cam: &crate::ring::Camera, text: &str) {
        use crate::announce::{AnnounceRequest, Clip, DEFAULT_LANG, JsonRequest};
        let Some(announcer) = self.deps.announce.clone() else {
            warn!(
                camera = %cam.id,
                "announcements are not available in this ring-bridge; ignored"
            );
            return;
        };
        let caps = cam.capabilities();
        if !caps.talk {
            warn!(camera = %cam.id, reason = ?caps.reason, "camera cannot talk; announcement ignored");
            return;
        }
        let req = if text.starts_with('{') {
            JsonRequest::parse(text.as_bytes()).and_then(JsonRequest::into_request)
        } else {
            Ok(AnnounceRequest {
                clip: Clip::Text {
                    text: text.to_owned(),
                    lang: DEFAULT_LANG.into(),
                },
                volume: None,
                wait: std::time::Duration::ZERO,
            })
        };
        let req = match req {
            Ok(r) => r,
            Err(e) => {
                self.intake.warn(&format!("bad announce {}", cam.id), |suppressed| {
                    warn!(camera = %cam.id, err = %e, suppressed, "bad announce command; ignored");
                });
                return;
            }
        };
        info!(camera = %cam.id, name = %cam.name, source = req.clip.source(), "announcement from MQTT");
        let id = cam.id;
        self.tasks.spawn(async move {
            let result = announcer.announce(id, req).await.map_err(|e| chain(&e));
            Done::Announce {
                camera_id: id,
                result,
            }
        });
    }

    fn stream_command(&mut self, camera_id: CameraId, on: bool) {
        let Some(control) = self.deps.stream.clone() else {
            if let Some(st) = self.cams.get_mut(&camera_id) {
                st.stream_override = on.then(|| {
                    StreamStatus::failed("live streaming is not available in this ring-bridge")
                });
            }
            self.publish_state(camera_id);
            return;
        };
        let max = self.opts.stream_max_duration;
        self.tasks.spawn(async move {
            let r = if on {
                control.start(camera_id, max).await
            } else {
                control.stop(camera_id).await
            };
            Done::Stream {
                camera_id,
                result: r.map_err(|e| e.reason().to_string()),
            }
        });
    }

    pub(super) fn switch_done(
        &mut self,
        camera_id: CameraId,
        key: &'static str,
        on: bool,
        result: Result<(), String>,
    ) {
        if let Some(st) = self.cams.get_mut(&camera_id) {
            let slot = match key {
                keys::LIGHT => &mut st.light_override,
                keys::SIREN => &mut st.siren_override,
                _ => &mut st.motion_detection_override,
            };
            match &result {
                Ok(()) => *slot = Some(on),
                Err(e) => {
                    warn!(camera = %camera_id, key, on, err = %e, "Ring command failed");
                    *slot = None;
                }
            }
        }
        if result.is_err() {
            // Re-send the unchanged state so HA drops its pending toggle.
            self.forget_state(camera_id, key);
        }
        self.publish_state(camera_id);
        self.deps.directory.refresh_now();
    }

    pub(super) fn stream_done(&mut self, camera_id: CameraId, result: Result<(), String>) {
        if let Err(reason) = result {
            warn!(camera = %camera_id, err = %reason, "stream control failed");
            if let Some(st) = self.cams.get_mut(&camera_id) {
                st.stream_override = Some(StreamStatus::failed(reason));
            }
            self.publish_state(camera_id);
        }
    }

    fn forget_state(&mut self, camera_id: CameraId, key: &str) {
        if let Some(e) = self.cameras.iter().find(|e| e.camera.id == camera_id) {
            let t =
                self.topics
                    .entity(&e.camera.location_id, &e.camera.device_id, key, Leaf::State);
            self.published.remove(&t);
        }
    }
}
