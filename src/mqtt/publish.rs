//! What the bridge publishes: retained messages deduplicated per connection,
//! transient events, and each camera's discovery and state messages.

use bytes::Bytes;
use rumqttc::QoS;
use tokio::time::Instant;
use tracing::warn;

use super::bridge::Bridge;
use super::entities::camera_entities;
use super::state::{camera_states, push_states};
use crate::base::CameraId;
use crate::cameras::Entry;

impl Bridge {
    /// Publishes a retained message unless the same payload already went out on
    /// this connection. Dropped while disconnected: every ConnAck republishes.
    pub(super) fn retained(&mut self, topic: String, payload: Bytes) {
        if !self.connected || self.published.get(&topic) == Some(&payload) {
            return;
        }
        match self
            .client
            .try_publish(topic.as_str(), QoS::AtLeastOnce, true, payload.to_vec())
        {
            Ok(()) => {
                self.published.insert(topic, payload);
            }
            Err(e) => warn!(topic = %topic, err = %e, "dropping MQTT publish"),
        }
    }

    /// Publishes a non-retained message (events).
    pub(super) fn transient(&mut self, topic: String, payload: Bytes) {
        if !self.connected {
            return;
        }
        if let Err(e) =
            self.client
                .try_publish(topic.as_str(), QoS::AtLeastOnce, false, payload.to_vec())
        {
            warn!(topic = %topic, err = %e, "dropping MQTT event");
        }
    }

    pub(super) fn publish_discovery(&mut self, entry: &Entry) {
        let cam = &entry.camera;
        let entities = camera_entities(&self.topics, &self.opts, cam);
        let topics: Vec<String> = entities.iter().map(|e| e.topic.clone()).collect();
        let stale: Vec<String> = self
            .discovery
            .get(&cam.device_id)
            .map(|old| {
                old.iter()
                    .filter(|t| !topics.contains(t))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for t in stale {
            self.retained(t, Bytes::new());
        }
        for e in entities {
            self.retained(e.topic, Bytes::from(e.config.to_json()));
        }
        self.discovery.insert(cam.device_id.clone(), topics);
    }

    pub(super) fn publish_state(&mut self, camera_id: CameraId) {
        let Some(entry) = self.cameras.iter().find(|e| e.camera.id == camera_id) else {
            return;
        };
        let Some(st) = self.cams.get(&camera_id) else {
            return;
        };
        let mut msgs = camera_states(&self.topics, entry, st, Instant::now());
        let push = self.deps.push.as_ref().map(|rx| rx.borrow().clone());
        msgs.extend(push_states(&self.topics, entry, push.as_ref()));
        for (t, p) in msgs {
            self.retained(t, p);
        }
    }

    /// Discovery and state of every camera.
    pub(super) fn publish_all(&mut self) {
        let cameras = self.cameras.clone();
        for entry in &cameras {
            self.publish_discovery(entry);
        }
        for entry in &cameras {
            self.publish_state(entry.camera.id);
        }
    }
}
