//! Typed Home Assistant MQTT discovery payloads.
//!
//! One struct per HA component, each with a `#[serde(flatten)]`ed [`Common`]
//! part (name, unique_id, availability, device, origin). Field names are HA's
//! long forms so the JSON reads like the HA docs
//! (<https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery> and the
//! per-platform pages `binary_sensor.mqtt`, `sensor.mqtt`, `switch.mqtt`,
//! `light.mqtt`, `button.mqtt`, `camera.mqtt`, `event.mqtt`, `select.mqtt`). Only types here;
//! which entities a camera gets is decided in [`super::entities`].

use serde::Serialize;

/// HA's `device` block: groups a camera's entities into one device.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Device {
    /// Stable identifiers (`[<instance>_]<device_id>`).
    pub identifiers: Vec<String>,
    /// The camera's name.
    pub name: String,
    /// Always `Ring`.
    pub manufacturer: String,
    /// Human model name.
    pub model: String,
    /// Ring's `kind`, e.g. `lpd_v4`. Sent as `hw_version` because `model_id`
    /// only exists in Home Assistant 2024.8 and later, and older releases
    /// reject the whole config for an unknown device key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hw_version: Option<String>,
    /// Firmware version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sw_version: Option<String>,
    /// Link to the ring-bridge console.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration_url: Option<String>,
}

/// HA's `origin` block: which software published the config.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Origin {
    /// `ring-bridge`.
    pub name: String,
    /// ring-bridge version.
    pub sw_version: String,
    /// Where to get help.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub support_url: Option<String>,
}

/// One entry of HA's `availability` list. Payloads are HA's defaults
/// (`online` / `offline`), so they are not repeated.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Availability {
    /// Topic carrying `online` / `offline`.
    pub topic: String,
}

/// `availability_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AvailabilityMode {
    /// Available only if every topic says `online` (bridge and camera).
    All,
    /// Available if any topic says `online`.
    Any,
    /// The last message wins.
    Latest,
}

/// `entity_category`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityCategory {
    /// Settings (e.g. motion detection on/off).
    Config,
    /// Read-only technical data (battery, signal, info).
    Diagnostic,
}

/// Fields every entity carries.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Common {
    /// Entity name; HA shows it after the device name ("Front Door Motion").
    pub name: String,
    /// `[<instance>_]<device_id>_<key>`.
    pub unique_id: String,
    /// Bridge and camera availability topics.
    pub availability: Vec<Availability>,
    /// How `availability` combines; always [`AvailabilityMode::All`] here.
    pub availability_mode: AvailabilityMode,
    /// The camera device.
    pub device: Device,
    /// ring-bridge.
    pub origin: Origin,
    /// QoS HA subscribes with.
    pub qos: u8,
    /// Config / diagnostic, or a primary entity when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_category: Option<EntityCategory>,
    /// `mdi:` icon.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// Retained JSON object whose keys become entity attributes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_attributes_topic: Option<String>,
}

/// `binary_sensor` (payloads: HA defaults `ON` / `OFF`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BinarySensor {
    /// Shared fields.
    #[serde(flatten)]
    pub common: Common,
    /// `ON` / `OFF`, retained.
    pub state_topic: String,
    /// e.g. `motion`, `occupancy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_class: Option<String>,
}

/// `sensor`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sensor {
    /// Shared fields.
    #[serde(flatten)]
    pub common: Common,
    /// Value (or JSON, with `value_template`), retained.
    pub state_topic: String,
    /// e.g. `battery`, `signal_strength`, `timestamp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_class: Option<String>,
    /// e.g. `%`, `dBm`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_of_measurement: Option<String>,
    /// `measurement` for numbers that have statistics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_class: Option<String>,
    /// Jinja template extracting the value from a JSON state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_template: Option<String>,
}

/// `switch` (payloads: HA defaults `ON` / `OFF`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Switch {
    /// Shared fields.
    #[serde(flatten)]
    pub common: Common,
    /// `ON` / `OFF`, retained.
    pub state_topic: String,
    /// HA publishes `ON` / `OFF` here.
    pub command_topic: String,
}

/// `light`, default (`basic`) schema, on/off only.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Light {
    /// Shared fields.
    #[serde(flatten)]
    pub common: Common,
    /// `ON` / `OFF`, retained.
    pub state_topic: String,
    /// HA publishes `ON` / `OFF` here.
    pub command_topic: String,
}

/// `button`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Button {
    /// Shared fields.
    #[serde(flatten)]
    pub common: Common,
    /// HA publishes [`Button::payload_press`] here.
    pub command_topic: String,
    /// `PRESS`.
    pub payload_press: String,
}

/// `camera`: shows the last image published on `topic`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Camera {
    /// Shared fields.
    #[serde(flatten)]
    pub common: Common,
    /// Raw JPEG bytes (no base64), retained.
    pub topic: String,
}

/// `event`: stateless; each JSON message `{"event_type": ...}` fires it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// Shared fields.
    #[serde(flatten)]
    pub common: Common,
    /// Where events are published (never retained).
    pub state_topic: String,
    /// Possible `event_type` values.
    pub event_types: Vec<String>,
    /// e.g. `doorbell`, `motion`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_class: Option<String>,
}

/// `text`: HA sends the text typed in on `command_topic`. No state topic, so HA
/// shows the last text sent (optimistic); accepted since HA 2022.12.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Text {
    /// Shared fields.
    #[serde(flatten)]
    pub common: Common,
    /// HA publishes the text here.
    pub command_topic: String,
    /// Longest text HA lets through (at most 255, HA's state limit).
    pub max: u16,
}

/// `select`: one of a fixed list of options (`select.mqtt`; HA 2024.3 accepts
/// `options`, `state_topic`, `command_topic`, `command_template`,
/// `value_template`, `retain`, `qos`, `encoding`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Select {
    /// Shared fields.
    #[serde(flatten)]
    pub common: Common,
    /// The selected option, retained.
    pub state_topic: String,
    /// HA publishes the chosen option here.
    pub command_topic: String,
    /// Every option, in display order.
    pub options: Vec<String>,
}

/// A discovery payload of any component.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Config {
    /// `binary_sensor`.
    BinarySensor(BinarySensor),
    /// `sensor`.
    Sensor(Sensor),
    /// `switch`.
    Switch(Switch),
    /// `light`.
    Light(Light),
    /// `button`.
    Button(Button),
    /// `camera`.
    Camera(Camera),
    /// `event`.
    Event(Event),
    /// `text`.
    Text(Text),
    /// `select`.
    Select(Select),
}

impl Config {
    /// The HA component (second level of the discovery topic).
    pub fn component(&self) -> &'static str {
        match self {
            Config::BinarySensor(_) => "binary_sensor",
            Config::Sensor(_) => "sensor",
            Config::Switch(_) => "switch",
            Config::Light(_) => "light",
            Config::Button(_) => "button",
            Config::Camera(_) => "camera",
            Config::Event(_) => "event",
            Config::Text(_) => "text",
            Config::Select(_) => "select",
        }
    }

    /// The shared fields.
    pub fn common(&self) -> &Common {
        match self {
            Config::BinarySensor(c) => &c.common,
            Config::Sensor(c) => &c.common,
            Config::Switch(c) => &c.common,
            Config::Light(c) => &c.common,
            Config::Button(c) => &c.common,
            Config::Camera(c) => &c.common,
            Config::Event(c) => &c.common,
            Config::Text(c) => &c.common,
            Config::Select(c) => &c.common,
        }
    }

    /// The JSON bytes to publish (retained) on the discovery topic.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain structs of strings, numbers and enums cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}
