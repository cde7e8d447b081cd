//! Which Home Assistant entities a camera gets, and their discovery payloads.
//!
//! The entity list depends only on the camera's capabilities (doorbell, light,
//! siren, battery, Wi-Fi), never on whether it is online: an offline camera is
//! discovered like any other and shown unavailable through its status topic
//! (ring-mqtt blocked discovery on offline hubs; peers.md §3 #10).

use super::MqttOptions;
use super::discovery::{
    Availability, AvailabilityMode, BinarySensor, Button, Camera as CameraCfg, Common, Config,
    Device, EntityCategory, Event, Light, Origin, Select, Sensor, Switch, Text,
};
use super::topics::{Leaf, Topics};
use crate::ring::Camera;

/// Entity keys (the `<key>` level of topics and the suffix of unique ids).
pub mod keys {
    /// `binary_sensor`, motion.
    pub const MOTION: &str = "motion";
    /// `binary_sensor`, doorbells: ON for `ding_duration` after a ding.
    pub const DING: &str = "ding";
    /// `event`, doorbells: fires `ding`.
    pub const DOORBELL: &str = "doorbell";
    /// `camera`: last snapshot.
    pub const SNAPSHOT: &str = "snapshot";
    /// `button`: take a snapshot now.
    pub const TAKE_SNAPSHOT: &str = "take_snapshot";
    /// `switch`: keep a live stream running.
    pub const STREAM: &str = "stream";
    /// `text`: speak the text on the camera speaker (the command topic also
    /// takes the JSON of `POST …/announce`).
    pub const ANNOUNCE: &str = "announce";
    /// `select`, cameras with recordings: which recorded event the RTSP event
    /// stream plays (`Latest`, `Motion 1..5`, ...); attributes name the event
    /// and a fresh recording URL.
    pub const EVENT_SELECT: &str = "event_select";
    /// `light`, cameras with a light.
    pub const LIGHT: &str = "light";
    /// `switch`, cameras with a siren.
    pub const SIREN: &str = "siren";
    /// `switch` (config): Ring motion detection.
    pub const MOTION_DETECTION: &str = "motion_detection";
    /// `sensor` (diagnostic): battery %.
    pub const BATTERY: &str = "battery";
    /// `sensor` (diagnostic): Wi-Fi signal dBm.
    pub const WIRELESS: &str = "wireless";
    /// `sensor` (diagnostic): last update time, details as attributes.
    pub const INFO: &str = "info";
    /// `sensor` (diagnostic): Ring push health (`connected`, `degraded`, ...),
    /// watchdog counters as attributes. The same for every camera: one Ring
    /// account has one push registration.
    pub const PUSH: &str = "push";
}

/// ring-bridge's name in discovery `origin`.
pub const ORIGIN_NAME: &str = "ring-bridge";

/// One entity of one camera.
#[derive(Clone, Debug, PartialEq)]
pub struct Entity {
    /// Entity key.
    pub key: &'static str,
    /// Discovery topic.
    pub topic: String,
    /// Discovery payload.
    pub config: Config,
}

struct Builder<'a> {
    topics: &'a Topics,
    cam: &'a Camera,
    device: Device,
    origin: Origin,
    availability: Vec<Availability>,
}

impl Builder<'_> {
    fn common(&self, key: &str, name: &str) -> Common {
        Common {
            name: name.to_string(),
            unique_id: self.topics.unique_id(&self.cam.device_id, key),
            availability: self.availability.clone(),
            availability_mode: AvailabilityMode::All,
            device: self.device.clone(),
            origin: self.origin.clone(),
            qos: 1,
            entity_category: None,
            icon: None,
            json_attributes_topic: None,
        }
    }

    fn topic(&self, key: &str, leaf: Leaf) -> String {
        self.topics
            .entity(&self.cam.location_id, &self.cam.device_id, key, leaf)
    }

    fn with_attrs(&self, mut c: Common, key: &str) -> Common {
        c.json_attributes_topic = Some(self.topic(key, Leaf::Attributes));
        c
    }

    fn entity(&self, key: &'static str, config: Config) -> Entity {
        Entity {
            key,
            topic: self
                .topics
                .discovery(config.component(), &self.cam.device_id, key),
            config,
        }
    }

    fn switch(&self, key: &'static str, common: Common) -> Entity {
        self.entity(
            key,
            Config::Switch(Switch {
                common,
                state_topic: self.topic(key, Leaf::State),
                command_topic: self.topic(key, Leaf::Command),
            }),
        )
    }
}

/// The HA device block for a camera.
pub fn device(topics: &Topics, opts: &MqttOptions, cam: &Camera) -> Device {
    Device {
        identifiers: vec![topics.device_identifier(&cam.device_id)],
        name: cam.name.clone(),
        manufacturer: "Ring".into(),
        model: cam.model.clone(),
        hw_version: (!cam.kind.is_empty()).then(|| cam.kind.clone()),
        sw_version: (!cam.firmware.is_empty()).then(|| cam.firmware.clone()),
        configuration_url: (!opts.console_url.is_empty()).then(|| opts.console_url.clone()),
    }
}

/// The discovery `origin` block.
pub fn origin(opts: &MqttOptions) -> Origin {
    Origin {
        name: ORIGIN_NAME.into(),
        sw_version: env!("CARGO_PKG_VERSION").into(),
        support_url: opts.support_url.clone(),
    }
}

/// Every entity of `cam`, in a fixed order.
pub fn camera_entities(topics: &Topics, opts: &MqttOptions, cam: &Camera) -> Vec<Entity> {
    let b = Builder {
        topics,
        cam,
        device: device(topics, opts, cam),
        origin: origin(opts),
        availability: vec![
            Availability {
                topic: topics.bridge_status(),
            },
            Availability {
                topic: topics.camera_status(&cam.location_id, &cam.device_id),
            },
        ],
    };
    let mut out = Vec::with_capacity(12);

    let c = b.with_attrs(b.common(keys::MOTION, "Motion"), keys::MOTION);
    out.push(b.entity(
        keys::MOTION,
        Config::BinarySensor(BinarySensor {
            common: c,
            state_topic: b.topic(keys::MOTION, Leaf::State),
            device_class: Some("motion".into()),
        }),
    ));

    if cam.doorbell {
        let mut c = b.with_attrs(b.common(keys::DING, "Ding"), keys::DING);
        c.icon = Some("mdi:doorbell-video".into());
        out.push(b.entity(
            keys::DING,
            Config::BinarySensor(BinarySensor {
                common: c,
                state_topic: b.topic(keys::DING, Leaf::State),
                device_class: Some("occupancy".into()),
            }),
        ));
        out.push(b.entity(
            keys::DOORBELL,
            Config::Event(Event {
                common: b.common(keys::DOORBELL, "Doorbell"),
                state_topic: b.topic(keys::DOORBELL, Leaf::State),
                event_types: vec!["ding".into()],
                device_class: Some("doorbell".into()),
            }),
        ));
    }

    let c = b.with_attrs(b.common(keys::SNAPSHOT, "Snapshot"), keys::SNAPSHOT);
    out.push(b.entity(
        keys::SNAPSHOT,
        Config::Camera(CameraCfg {
            common: c,
            topic: b.topic(keys::SNAPSHOT, Leaf::Image),
        }),
    ));

    let mut c = b.common(keys::TAKE_SNAPSHOT, "Take snapshot");
    c.icon = Some("mdi:camera".into());
    out.push(b.entity(
        keys::TAKE_SNAPSHOT,
        Config::Button(Button {
            common: c,
            command_topic: b.topic(keys::TAKE_SNAPSHOT, Leaf::Command),
            payload_press: "PRESS".into(),
        }),
    ));

    let mut c = b.with_attrs(b.common(keys::STREAM, "Live stream"), keys::STREAM);
    c.icon = Some("mdi:cctv".into());
    out.push(b.switch(keys::STREAM, c));

    // Every streaming camera offers two-way talk (ring-api.md §2.5).
    let mut c = b.common(keys::ANNOUNCE, "Announce");
    c.icon = Some("mdi:bullhorn".into());
    out.push(b.entity(
        keys::ANNOUNCE,
        Config::Text(Text {
            common: c,
            command_topic: b.topic(keys::ANNOUNCE, Leaf::Command),
            max: 255,
        }),
    ));

    if cam.recordings_enabled {
        let mut c = b.with_attrs(
            b.common(keys::EVENT_SELECT, "Event stream"),
            keys::EVENT_SELECT,
        );
        c.icon = Some("mdi:filmstrip-box".into());
        out.push(b.entity(
            keys::EVENT_SELECT,
            Config::Select(Select {
                common: c,
                state_topic: b.topic(keys::EVENT_SELECT, Leaf::State),
                command_topic: b.topic(keys::EVENT_SELECT, Leaf::Command),
                options: crate::events::replay::options(cam.doorbell),
            }),
        ));
    }

    if cam.has_light {
        out.push(b.entity(
            keys::LIGHT,
            Config::Light(Light {
                common: b.common(keys::LIGHT, "Light"),
                state_topic: b.topic(keys::LIGHT, Leaf::State),
                command_topic: b.topic(keys::LIGHT, Leaf::Command),
            }),
        ));
    }

    if cam.has_siren {
        let mut c = b.common(keys::SIREN, "Siren");
        c.icon = Some("mdi:alarm-light".into());
        out.push(b.switch(keys::SIREN, c));
    }

    // Ring refuses settings changes on cameras shared with this account.
    if !cam.shared {
        let mut c = b.common(keys::MOTION_DETECTION, "Motion detection");
        c.entity_category = Some(EntityCategory::Config);
        c.icon = Some("mdi:motion-sensor".into());
        out.push(b.switch(keys::MOTION_DETECTION, c));
    }

    if cam.battery.is_some() {
        let mut c = b.common(keys::BATTERY, "Battery");
        c.entity_category = Some(EntityCategory::Diagnostic);
        out.push(b.entity(
            keys::BATTERY,
            Config::Sensor(Sensor {
                common: c,
                state_topic: b.topic(keys::BATTERY, Leaf::State),
                device_class: Some("battery".into()),
                unit_of_measurement: Some("%".into()),
                state_class: Some("measurement".into()),
                value_template: None,
            }),
        ));
    }

    if cam.wifi_rssi_dbm.is_some() {
        let mut c = b.common(keys::WIRELESS, "Wi-Fi signal");
        c.entity_category = Some(EntityCategory::Diagnostic);
        out.push(b.entity(
            keys::WIRELESS,
            Config::Sensor(Sensor {
                common: c,
                state_topic: b.topic(keys::WIRELESS, Leaf::State),
                device_class: Some("signal_strength".into()),
                unit_of_measurement: Some("dBm".into()),
                state_class: Some("measurement".into()),
                value_template: None,
            }),
        ));
    }

    let mut c = b.common(keys::INFO, "Info");
    c.entity_category = Some(EntityCategory::Diagnostic);
    c.icon = Some("mdi:information-outline".into());
    c.json_attributes_topic = Some(b.topic(keys::INFO, Leaf::State));
    out.push(b.entity(
        keys::INFO,
        Config::Sensor(Sensor {
            common: c,
            state_topic: b.topic(keys::INFO, Leaf::State),
            device_class: Some("timestamp".into()),
            unit_of_measurement: None,
            state_class: None,
            value_template: Some("{{ value_json.last_update }}".into()),
        }),
    ));

    let mut c = b.with_attrs(b.common(keys::PUSH, "Push"), keys::PUSH);
    c.entity_category = Some(EntityCategory::Diagnostic);
    c.icon = Some("mdi:bell-ring-outline".into());
    out.push(b.entity(
        keys::PUSH,
        Config::Sensor(Sensor {
            common: c,
            state_topic: b.topic(keys::PUSH, Leaf::State),
            device_class: None,
            unit_of_measurement: None,
            state_class: None,
            value_template: None,
        }),
    ));

    out
}
