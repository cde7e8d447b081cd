//! The topic scheme (authoritative description: `docs/MQTT.md`).
//!
//! ```text
//! <prefix>[/<instance>]/status                                  bridge availability (LWT)
//! <prefix>[/<instance>]/<location_id>/camera/<device_id>/status  camera availability
//! <prefix>[/<instance>]/<location_id>/camera/<device_id>/<key>/state|command|attributes|image
//! <discovery_prefix>/<component>/ringbridge[_<instance>]/<device_id>_<key>/config
//! ```
//!
//! Pure string functions; no I/O.

use super::MqttOptions;

/// Leaf of an entity topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leaf {
    /// Retained state.
    State,
    /// Commands from Home Assistant.
    Command,
    /// Retained JSON attributes.
    Attributes,
    /// Raw JPEG bytes (the `snapshot` camera entity).
    Image,
}

impl Leaf {
    fn as_str(self) -> &'static str {
        match self {
            Leaf::State => "state",
            Leaf::Command => "command",
            Leaf::Attributes => "attributes",
            Leaf::Image => "image",
        }
    }
}

/// A parsed command topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandTopic {
    /// Location id from the topic.
    pub location_id: String,
    /// Ring hex device id from the topic.
    pub device_id: String,
    /// Entity key, e.g. `light`.
    pub key: String,
}

/// Builds and parses topics for one bridge instance.
#[derive(Clone, Debug)]
pub struct Topics {
    /// `<prefix>` or `<prefix>/<instance>`.
    root: String,
    discovery_prefix: String,
    node_id: String,
    uid_prefix: String,
    ha_status: String,
}

/// Replaces characters that would break a topic level.
fn level(s: &str) -> String {
    s.chars()
        .map(|c| {
            if matches!(c, '/' | '+' | '#') || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

impl Topics {
    /// The scheme for these options.
    pub fn new(opts: &MqttOptions) -> Self {
        let (root, node_id, uid_prefix) = match &opts.instance {
            Some(i) => (
                format!("{}/{}", opts.topic_prefix, i),
                format!("ringbridge_{i}"),
                format!("{i}_"),
            ),
            None => (
                opts.topic_prefix.clone(),
                "ringbridge".to_string(),
                String::new(),
            ),
        };
        Topics {
            root,
            discovery_prefix: opts.discovery_prefix.clone(),
            node_id,
            uid_prefix,
            ha_status: opts.ha_status_topic.clone(),
        }
    }

    /// Bridge availability (`online` / `offline`, retained; also the LWT).
    pub fn bridge_status(&self) -> String {
        format!("{}/status", self.root)
    }

    /// Home Assistant's birth topic.
    pub fn ha_status(&self) -> &str {
        &self.ha_status
    }

    /// `<root>/<location_id>/camera/<device_id>`.
    pub fn camera_base(&self, location_id: &str, device_id: &str) -> String {
        format!(
            "{}/{}/camera/{}",
            self.root,
            level(location_id),
            level(device_id)
        )
    }

    /// Camera availability topic.
    pub fn camera_status(&self, location_id: &str, device_id: &str) -> String {
        format!("{}/status", self.camera_base(location_id, device_id))
    }

    /// `<base>/<key>/<leaf>`.
    pub fn entity(&self, location_id: &str, device_id: &str, key: &str, leaf: Leaf) -> String {
        format!(
            "{}/{}/{}",
            self.camera_base(location_id, device_id),
            key,
            leaf.as_str()
        )
    }

    /// The filter that matches every command topic of this instance.
    pub fn command_filter(&self) -> String {
        format!("{}/+/camera/+/+/command", self.root)
    }

    /// Parses a command topic of this instance.
    pub fn parse_command(&self, topic: &str) -> Option<CommandTopic> {
        let rest = topic.strip_prefix(&self.root)?.strip_prefix('/')?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            [loc, "camera", dev, key, "command"] if !loc.is_empty() && !dev.is_empty() => {
                Some(CommandTopic {
                    location_id: (*loc).to_string(),
                    device_id: (*dev).to_string(),
                    key: (*key).to_string(),
                })
            }
            _ => None,
        }
    }

    /// `<discovery_prefix>/<component>/<node_id>/<device_id>_<key>/config`.
    pub fn discovery(&self, component: &str, device_id: &str, key: &str) -> String {
        format!(
            "{}/{}/{}/{}_{}/config",
            self.discovery_prefix,
            component,
            self.node_id,
            level(device_id),
            key
        )
    }

    /// `[<instance>_]<device_id>_<key>`: stable across restarts and renames.
    pub fn unique_id(&self, device_id: &str, key: &str) -> String {
        format!("{}{}_{}", self.uid_prefix, device_id, key)
    }

    /// HA device identifier: `[<instance>_]<device_id>`.
    pub fn device_identifier(&self, device_id: &str) -> String {
        format!("{}{}", self.uid_prefix, device_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::Secret;

    fn topics(instance: Option<&str>) -> Topics {
        let mut o = MqttOptions::new(Secret::new("mqtt://localhost".into()));
        o.instance = instance.map(str::to_string);
        Topics::new(&o)
    }

    #[test]
    fn scheme_without_instance() {
        let t = topics(None);
        assert_eq!(t.bridge_status(), "ring/status");
        assert_eq!(t.camera_status("loc", "abc"), "ring/loc/camera/abc/status");
        assert_eq!(
            t.entity("loc", "abc", "light", Leaf::Command),
            "ring/loc/camera/abc/light/command"
        );
        assert_eq!(
            t.discovery("light", "abc", "light"),
            "homeassistant/light/ringbridge/abc_light/config"
        );
        assert_eq!(t.unique_id("abc", "motion"), "abc_motion");
        assert_eq!(t.command_filter(), "ring/+/camera/+/+/command");
    }

    #[test]
    fn scheme_with_instance() {
        let t = topics(Some("north"));
        assert_eq!(t.bridge_status(), "ring/north/status");
        assert_eq!(t.camera_base("loc", "abc"), "ring/north/loc/camera/abc");
        assert_eq!(t.unique_id("abc", "motion"), "north_abc_motion");
        assert_eq!(
            t.discovery("switch", "abc", "siren"),
            "homeassistant/switch/ringbridge_north/abc_siren/config"
        );
    }

    #[test]
    fn parse_commands() {
        let t = topics(None);
        let c = t
            .parse_command("ring/loc-1/camera/abc/siren/command")
            .unwrap();
        assert_eq!(
            (c.location_id.as_str(), c.device_id.as_str(), c.key.as_str()),
            ("loc-1", "abc", "siren")
        );
        assert_eq!(t.parse_command("ring/loc-1/camera/abc/siren/state"), None);
        assert_eq!(t.parse_command("ringx/loc/camera/abc/siren/command"), None);
        assert_eq!(t.parse_command("ring/x/loc/camera/abc/siren/command"), None);
        let ti = topics(Some("x"));
        assert!(
            ti.parse_command("ring/x/loc/camera/abc/siren/command")
                .is_some()
        );
    }

    #[test]
    fn wildcards_are_neutralised() {
        let t = topics(None);
        assert_eq!(t.camera_base("a/b", "c+#"), "ring/a_b/camera/c__");
    }
}
