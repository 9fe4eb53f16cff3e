//! The bridge's settings: where the broker is, and which topics carry which protocol in
//! which payload form. Read from TOML:
//!
//! ```toml
//! [mqtt]
//! host = "127.0.0.1"
//! port = 1883
//! client_id = "ami-bridge-dcu-17"     # also the persistent session's name
//! # username = "ami"; password = "..."
//!
//! [[route]]
//! filter = "dcu/+/p1"                 # an MQTT topic filter (+ one level, # the rest)
//! protocol = "dsmr"                   # the decoder's protocol name on the bus
//! payload = "raw"                     # raw | hex | base64 | json
//! meter_level = 1                     # optional: the topic level (from 0) naming the meter
//! ```
//!
//! Payload forms: `raw` is the frame's bytes as they are; `hex` and `base64` are the frame
//! as text (whitespace around it ignored); `json` is an object
//! `{"data": "<frame>", "encoding": "hex" | "base64", "meter": "<id>"}` where `encoding`
//! defaults to `base64` and `meter` (optional) is the hint, taking precedence over
//! `meter_level`. The first route whose filter matches a topic takes the message.

use serde::Deserialize;

/// Why the settings are not usable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML does not parse into the settings.
    #[error("bridge settings: {0}")]
    Toml(String),
    /// A route is wrong.
    #[error("route {index} ({filter:?}): {reason}")]
    Route {
        /// Its place in the list, from 0.
        index: usize,
        /// Its filter.
        filter: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// No route.
    #[error("no [[route]]: the bridge would subscribe to nothing")]
    NoRoute,
}

/// How a payload carries its frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadFormat {
    /// The bytes as they are.
    Raw,
    /// Hex text.
    Hex,
    /// Base64 text (standard alphabet, padded).
    Base64,
    /// A JSON object with the frame in `data`.
    Json,
}

/// One topic filter and what its messages are.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// MQTT topic filter.
    pub filter: String,
    /// Protocol name on the bus.
    pub protocol: String,
    /// Payload form.
    pub payload: PayloadFormat,
    /// The topic level (from 0) that names the meter, if one does.
    #[serde(default)]
    pub meter_level: Option<usize>,
}

/// The broker connection.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSettings {
    /// Broker host.
    pub host: String,
    /// Broker port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Client id; the broker keeps the session (subscriptions, unacknowledged messages)
    /// under it while the bridge is away.
    pub client_id: String,
    /// User name.
    #[serde(default)]
    pub username: Option<String>,
    /// Password.
    #[serde(default)]
    pub password: Option<String>,
    /// Keep-alive interval, seconds.
    #[serde(default = "default_keep_alive")]
    pub keep_alive_s: u64,
    /// The largest message accepted, bytes.
    #[serde(default = "default_max_packet")]
    pub max_packet: usize,
}

fn default_port() -> u16 {
    1883
}
fn default_keep_alive() -> u64 {
    30
}
fn default_max_packet() -> usize {
    256 * 1024
}

/// Everything the bridge needs.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeConfig {
    /// The broker.
    pub mqtt: MqttSettings,
    /// Topic filters, first match wins.
    #[serde(rename = "route")]
    pub routes: Vec<Route>,
}

impl BridgeConfig {
    /// Parses and checks TOML settings.
    pub fn from_toml(text: &str) -> Result<BridgeConfig, ConfigError> {
        let cfg: BridgeConfig =
            toml::from_str(text).map_err(|e| ConfigError::Toml(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the routes: valid filters, protocol names that are one subject token.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.routes.is_empty() {
            return Err(ConfigError::NoRoute);
        }
        for (index, r) in self.routes.iter().enumerate() {
            let bad = |reason| ConfigError::Route {
                index,
                filter: r.filter.clone(),
                reason,
            };
            if r.filter.is_empty() || !rumqttc::valid_filter(&r.filter) {
                return Err(bad("not a valid MQTT topic filter"));
            }
            if r.protocol.is_empty()
                || !r
                    .protocol
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            {
                return Err(bad(
                    "protocol must be a lower-case name like dsmr or iec62056-21",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_parses_and_bad_routes_are_named() {
        let cfg = BridgeConfig::from_toml(
            r#"
            [mqtt]
            host = "127.0.0.1"
            client_id = "b1"
            [[route]]
            filter = "dcu/+/p1"
            protocol = "dsmr"
            payload = "raw"
            meter_level = 1
            [[route]]
            filter = "dcu/#"
            protocol = "wmbus"
            payload = "json"
            "#,
        )
        .unwrap();
        assert_eq!(cfg.mqtt.port, 1883);
        assert_eq!(cfg.routes.len(), 2);
        assert_eq!(cfg.routes[1].payload, PayloadFormat::Json);

        let bad = BridgeConfig::from_toml(
            "[mqtt]\nhost='h'\nclient_id='c'\n[[route]]\nfilter='a/#/b'\nprotocol='dsmr'\npayload='raw'\n",
        );
        assert!(
            matches!(bad, Err(ConfigError::Route { index: 0, .. })),
            "{bad:?}"
        );
        let bad = BridgeConfig::from_toml(
            "[mqtt]\nhost='h'\nclient_id='c'\n[[route]]\nfilter='a/+'\nprotocol='DS MR'\npayload='raw'\n",
        );
        assert!(matches!(bad, Err(ConfigError::Route { .. })));
        let bad = BridgeConfig::from_toml("route = []\n[mqtt]\nhost='h'\nclient_id='c'\n");
        assert!(matches!(bad, Err(ConfigError::NoRoute)));
        let bad = BridgeConfig::from_toml(
            "[mqtt]\nhost='h'\nclient_id='c'\n[[route]]\nfilter='a'\nprotocol='x'\npayload='zip'\n",
        );
        assert!(matches!(bad, Err(ConfigError::Toml(_))));
    }
}
