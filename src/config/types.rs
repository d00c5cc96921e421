//! Small validated value types used across the configuration: regex patterns and listen
//! addresses.

use std::net::SocketAddr;

use serde::{Deserialize, Deserializer};

use super::Issue;

/// A regular expression from the configuration, compiled when the file is parsed so that a bad
/// pattern is reported with its key. Matching is unanchored, as in node_exporter's flags (write
/// `^...$` to anchor).
#[derive(Debug, Clone)]
pub struct Pattern(regex::Regex);

impl Pattern {
    /// Compiles a pattern.
    pub fn new(src: &str) -> Result<Self, regex::Error> {
        regex::Regex::new(src).map(Self)
    }

    /// True when the pattern matches anywhere in `s`.
    pub fn is_match(&self, s: &str) -> bool {
        self.0.is_match(s)
    }

    /// The source text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The compiled regex.
    pub fn regex(&self) -> &regex::Regex {
        &self.0
    }

    /// True when `name` passes an include/exclude pair: it matches `include` (when set) and
    /// does not match `exclude` (when set).
    pub fn admits(include: Option<&Pattern>, exclude: Option<&Pattern>, name: &str) -> bool {
        include.is_none_or(|p| p.is_match(name)) && !exclude.is_some_and(|p| p.is_match(name))
    }

    /// A collector's `device_include` and `device_exclude` cannot both be set: when they are,
    /// reports it at `<key>.device_include`.
    pub fn check_device_filters(
        key: &str,
        include: Option<&Pattern>,
        exclude: Option<&Pattern>,
        issues: &mut Vec<Issue>,
    ) {
        if include.is_some() && exclude.is_some() {
            issues.push(Issue::new(
                format!("{key}.device_include"),
                "device_include and device_exclude are mutually exclusive",
            ));
        }
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Pattern::new(&s).map_err(|e| {
            let first = e
                .to_string()
                .lines()
                .last()
                .unwrap_or_default()
                .trim()
                .to_string();
            serde::de::Error::custom(format!("invalid regex {s:?}: {first}"))
        })
    }
}

/// Parses `host:port`, `[v6]:port` or `:port` (all interfaces, IPv6 and IPv4). Names are not
/// resolved: a listen address is an IP.
pub fn parse_listen_address(s: &str) -> Result<Vec<SocketAddr>, String> {
    let bad = || format!("expected host:port or :port, got {s:?}");
    if let Some(port) = s.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| bad())?;
        return Ok(vec![
            SocketAddr::from(([0u16; 8], port)),
            SocketAddr::from(([0u8; 4], port)),
        ]);
    }
    if let Some(port) = s.strip_prefix("localhost:") {
        let port: u16 = port.parse().map_err(|_| bad())?;
        return Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]);
    }
    s.parse::<SocketAddr>().map(|a| vec![a]).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen_address("127.0.0.1:9100").expect("v4"),
            vec!["127.0.0.1:9100".parse().expect("addr")]
        );
        assert_eq!(
            parse_listen_address("[::1]:80").expect("v6"),
            vec!["[::1]:80".parse().expect("addr")]
        );
        assert_eq!(parse_listen_address(":19110").expect("any").len(), 2);
        assert!(parse_listen_address("host").is_err());
        assert!(parse_listen_address(":99999").is_err());
    }
}
