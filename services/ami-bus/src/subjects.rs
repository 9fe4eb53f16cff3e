//! Subject and stream names: the one place where they are made.
//!
//! Subjects are lower-case, dot-separated, most general first (`ami.raw.dlms.dcu-17`). The root
//! (`ami` in production) is configurable so that tests, and several platforms on one NATS
//! account, stay apart: every subject and stream name derives from it.

use std::fmt::Write as _;

/// The JetStream streams of the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// Raw frames from adapters: `<root>.raw.<protocol>.<adapter>`.
    Raw,
    /// Canonical readings: `<root>.readings.<meter>`.
    Readings,
    /// Events: `<root>.events.<kind>.<meter>`.
    Events,
    /// Downlink commands and their acks: `<root>.cmd.<adapter>.<meter>`,
    /// `<root>.cmdack.<adapter>.<meter>`.
    Commands,
    /// Frames that could not be decoded, with the reason: `<root>.dead.<protocol>.<adapter>`.
    Dead,
}

impl StreamKind {
    /// Every stream.
    pub const ALL: [StreamKind; 5] = [
        StreamKind::Raw,
        StreamKind::Readings,
        StreamKind::Events,
        StreamKind::Commands,
        StreamKind::Dead,
    ];

    /// The stream's suffix (upper case) in its name.
    const fn suffix(self) -> &'static str {
        match self {
            StreamKind::Raw => "RAW",
            StreamKind::Readings => "READINGS",
            StreamKind::Events => "EVENTS",
            StreamKind::Commands => "COMMANDS",
            StreamKind::Dead => "DEAD",
        }
    }

    /// The subject tokens after the root that the stream captures.
    const fn tokens(self) -> &'static [&'static str] {
        match self {
            StreamKind::Raw => &["raw"],
            StreamKind::Readings => &["readings"],
            StreamKind::Events => &["events"],
            StreamKind::Commands => &["cmd", "cmdack"],
            StreamKind::Dead => &["dead"],
        }
    }
}

/// Subject and stream names under one root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    root: String,
}

impl Default for Topology {
    fn default() -> Self {
        Topology { root: "ami".into() }
    }
}

impl Topology {
    /// Names under `root` (a single subject token; other characters are replaced).
    pub fn new(root: &str) -> Self {
        Topology { root: token(root) }
    }

    /// The root token.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The JetStream stream name of `kind` (`AMI_RAW`).
    pub fn stream(&self, kind: StreamKind) -> String {
        let mut name: String = self
            .root
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        name.push('_');
        name.push_str(kind.suffix());
        name
    }

    /// The subjects the stream of `kind` captures (`ami.raw.>`).
    pub fn stream_subjects(&self, kind: StreamKind) -> Vec<String> {
        kind.tokens()
            .iter()
            .map(|t| format!("{}.{t}.>", self.root))
            .collect()
    }

    /// Which stream captures `subject`, if any.
    pub fn stream_of(&self, subject: &str) -> Option<StreamKind> {
        let rest = subject.strip_prefix(&self.root)?.strip_prefix('.')?;
        let first = rest.split('.').next()?;
        StreamKind::ALL
            .into_iter()
            .find(|k| k.tokens().contains(&first))
    }

    /// A raw frame from `adapter` in `protocol`.
    pub fn raw(&self, protocol: &str, adapter: &str) -> String {
        self.join(&["raw", protocol, adapter])
    }

    /// The filter for every raw frame.
    pub fn raw_all(&self) -> String {
        format!("{}.raw.>", self.root)
    }

    /// The readings of `meter`.
    pub fn readings(&self, meter: &str) -> String {
        self.join(&["readings", meter])
    }

    /// An event of `kind` from `meter`.
    pub fn event(&self, kind: &str, meter: &str) -> String {
        self.join(&["events", kind, meter])
    }

    /// A frame that could not be decoded.
    pub fn dead(&self, protocol: &str, adapter: &str) -> String {
        self.join(&["dead", protocol, adapter])
    }

    /// A command for `meter` through `adapter`.
    pub fn command(&self, adapter: &str, meter: &str) -> String {
        self.join(&["cmd", adapter, meter])
    }

    /// Every command for `adapter`.
    pub fn commands_for(&self, adapter: &str) -> String {
        format!("{}.cmd.{}.>", self.root, token(adapter))
    }

    /// An adapter's acknowledgement of a command for `meter`.
    pub fn command_ack(&self, adapter: &str, meter: &str) -> String {
        self.join(&["cmdack", adapter, meter])
    }

    fn join(&self, parts: &[&str]) -> String {
        let mut s = String::with_capacity(64);
        s.push_str(&self.root);
        for p in parts {
            s.push('.');
            push_token(&mut s, p);
        }
        s
    }
}

/// `text` as one subject token: lower case; `.`, `*`, `>`, whitespace and control characters
/// become `_`; an empty text becomes `_`.
pub fn token(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    push_token(&mut s, text);
    s
}

fn push_token(out: &mut String, text: &str) {
    if text.is_empty() {
        out.push('_');
        return;
    }
    for c in text.chars() {
        match c {
            '.' | '*' | '>' => out.push('_'),
            c if c.is_whitespace() || c.is_control() => out.push('_'),
            c if c.is_ascii_uppercase() => out.push(c.to_ascii_lowercase()),
            c if c.is_ascii() => out.push(c),
            // Non-ASCII: hex of its code point keeps subjects plain ASCII.
            c => {
                let _ = write!(out, "u{:x}", c as u32);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_follow_the_design() {
        let t = Topology::default();
        assert_eq!(t.raw("dlms", "dcu-17"), "ami.raw.dlms.dcu-17");
        assert_eq!(t.readings("E0025"), "ami.readings.e0025");
        assert_eq!(t.event("power-down", "m1"), "ami.events.power-down.m1");
        assert_eq!(t.command("dcu-17", "m1"), "ami.cmd.dcu-17.m1");
        assert_eq!(t.stream(StreamKind::Raw), "AMI_RAW");
        assert_eq!(
            t.stream_subjects(StreamKind::Commands),
            ["ami.cmd.>", "ami.cmdack.>"]
        );
        let t = Topology::new("t-42");
        assert_eq!(t.stream(StreamKind::Dead), "T_42_DEAD");
        assert_eq!(t.stream_of("t-42.raw.dsmr.a"), Some(StreamKind::Raw));
        assert_eq!(t.stream_of("t-42.cmdack.a.m"), Some(StreamKind::Commands));
        assert_eq!(t.stream_of("ami.raw.dsmr.a"), None);
    }

    #[test]
    fn hostile_ids_stay_one_token() {
        let t = Topology::default();
        assert_eq!(t.readings("a.b>c *"), "ami.readings.a_b_c__");
        assert_eq!(t.readings(""), "ami.readings._");
        assert_eq!(t.readings("zähler"), "ami.readings.zue4hler");
    }

    proptest! {
        #[test]
        fn any_id_is_one_token(id in any::<String>()) {
            let s = Topology::default().readings(&id);
            let tokens: Vec<&str> = s.split('.').collect();
            prop_assert_eq!(tokens.len(), 3);
            prop_assert!(!tokens[2].is_empty());
            prop_assert!(s.is_ascii());
            prop_assert!(!s.contains(['*', '>', ' ']));
        }
    }
}
