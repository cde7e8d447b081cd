//! Hard limits of the protocols and libraries we use, shared by the
//! configuration check (`config`) and the component that enforces them, so
//! the two cannot drift apart. Configurable limits live in `config::limits`.

/// Largest MQTT packet the transport accepts, in bytes (16 MiB). rumqttc drops
/// the whole connection on a larger packet; `limits.mqtt_max_message_bytes`
/// may not exceed it.
pub const MQTT_MAX_INCOMING_PACKET: usize = 16 * 1024 * 1024;
