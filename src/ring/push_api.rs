//! Push registration with Ring (ring-api.md §7.1): tell Ring where to send
//! pushes (`PATCH clients_api/device` with the FCM token) and subscribe each
//! camera to ding and motion pushes (`doorbots/{id}/subscribe`,
//! `…/motions_subscribe`).
//!
//! These are thin calls on [`RingClient`]; when and how often to make them is
//! decided by `crate::events::push`. Nothing here talks to FCM.

use reqwest::Method;
use serde_json::{Value, json};

use super::devices::{id_of, parse_ring_devices};
use super::request::{Body, Call};
use super::{Error, RingClient};

use crate::base::CameraId;

/// The `ring_devices` arrays whose entries carry `subscribed`/`subscribed_motions`.
const SUBSCRIPTION_ARRAYS: [&str; 4] = ["doorbots", "authorized_doorbots", "stickup_cams", "other"];

/// One camera's push subscription flags, as `clients_api/ring_devices` reports
/// them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushSubscription {
    /// Ring's numeric camera id.
    pub camera_id: CameraId,
    /// The camera is a doorbell (it has dings to subscribe to).
    pub doorbell: bool,
    /// `subscribed` (ding pushes); `None` when Ring did not say.
    pub subscribed: Option<bool>,
    /// `subscribed_motions` (motion pushes); `None` when Ring did not say.
    pub subscribed_motions: Option<bool>,
}

impl PushSubscription {
    /// Whether `doorbots/{id}/subscribe` should be called: a doorbell whose
    /// `subscribed` is not `true` (ring-mqtt's rule).
    pub fn needs_ding_subscription(&self) -> bool {
        self.doorbell && self.subscribed != Some(true)
    }

    /// Whether `doorbots/{id}/motions_subscribe` should be called:
    /// `subscribed_motions` is not `true`.
    pub fn needs_motion_subscription(&self) -> bool {
        self.subscribed_motions != Some(true)
    }
}

/// Extracts every camera's subscription flags from a `ring_devices` answer.
pub fn parse_push_subscriptions(v: &Value) -> Vec<PushSubscription> {
    parse_ring_devices(v)
        .into_iter()
        .map(|cam| {
            let raw = SUBSCRIPTION_ARRAYS
                .iter()
                .filter_map(|a| v.get(*a).and_then(Value::as_array))
                .flatten()
                .find(|d| id_of(d.get("id")) == Some(cam.id));
            let flag = |name: &str| raw.and_then(|d| d.get(name)).and_then(Value::as_bool);
            PushSubscription {
                camera_id: cam.id,
                doorbell: cam.doorbell,
                subscribed: flag("subscribed"),
                subscribed_motions: flag("subscribed_motions"),
            }
        })
        .collect()
}

impl RingClient {
    /// Registers `token` (an FCM registration token) as this client's push
    /// target: `PATCH clients_api/device` with
    /// `device{metadata{api_version:11, device_model, pn_dict_version:"2.0.0",
    /// pn_service:"fcm"}, os:"android", push_notification_token}`. Ring answers
    /// 204. Re-send after every new session (see
    /// [`RingClient::session_generation`]).
    pub async fn register_push(&self, token: &str) -> Result<(), Error> {
        let url = self.clients_url("device")?;
        let body = json!({
            "device": {
                "metadata": {
                    "api_version": 11,
                    "device_model": self.device_model(),
                    "pn_dict_version": "2.0.0",
                    "pn_service": "fcm",
                },
                "os": "android",
                "push_notification_token": token,
            }
        });
        self.engine
            .send(&Call::with(Method::PATCH, url, Body::Json(body)))
            .await
            .map(|_| ())
    }

    /// `POST clients_api/doorbots/{id}/subscribe`: ding pushes for a doorbell.
    pub async fn subscribe(&self, camera_id: CameraId) -> Result<(), Error> {
        self.post_subscription(camera_id, "subscribe").await
    }

    /// `POST clients_api/doorbots/{id}/motions_subscribe`: motion pushes.
    pub async fn motions_subscribe(&self, camera_id: CameraId) -> Result<(), Error> {
        self.post_subscription(camera_id, "motions_subscribe").await
    }

    /// Every camera's push subscription flags (one `ring_devices` call).
    pub async fn push_subscriptions(&self) -> Result<Vec<PushSubscription>, Error> {
        let v: Value = self
            .engine
            .json(&Call::get(self.clients_url("ring_devices")?))
            .await?;
        Ok(parse_push_subscriptions(&v))
    }

    /// The generation of the current Ring session, creating one if there is
    /// none or it is too old. The number grows by one with every new session,
    /// so a push listener compares it with the generation it registered under
    /// to know when to call [`RingClient::register_push`] again.
    pub async fn session_generation(&self) -> Result<u64, Error> {
        self.engine.ensure_session().await
    }

    async fn post_subscription(&self, camera_id: CameraId, action: &str) -> Result<(), Error> {
        let url = self.clients_url(&format!("doorbots/{camera_id}/{action}"))?;
        self.engine
            .send(&Call::with(Method::POST, url, Body::Empty).camera(camera_id))
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_flags_from_ring_devices() {
        let v = json!({
            "doorbots": [
                {"id": 11, "kind": "doorbell_v4", "description": "Front",
                 "subscribed": true, "subscribed_motions": false},
                {"id": "12", "kind": "lpd_v2", "description": "Back"}
            ],
            "stickup_cams": [
                {"id": 21, "kind": "cocoa_camera", "description": "Yard",
                 "subscribed": false, "subscribed_motions": true}
            ]
        });
        let subs = parse_push_subscriptions(&v);
        let by = |id| subs.iter().find(|s| s.camera_id == id).expect("camera");
        assert!(!by(CameraId::new(11)).needs_ding_subscription());
        assert!(by(CameraId::new(11)).needs_motion_subscription());
        assert!(by(CameraId::new(12)).needs_ding_subscription());
        assert!(by(CameraId::new(12)).needs_motion_subscription());
        assert!(!by(CameraId::new(21)).doorbell);
        assert!(
            !by(CameraId::new(21)).needs_ding_subscription(),
            "not a doorbell"
        );
        assert!(!by(CameraId::new(21)).needs_motion_subscription());
    }
}
