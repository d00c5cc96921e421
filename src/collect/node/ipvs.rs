//! `ipvs` collector: IP Virtual Server totals from `<procfs>/net/ip_vs_stats` and per-backend
//! gauges from `<procfs>/net/ip_vs`, as node_exporter 1.5.
//!
//! Formats (kernel `net/netfilter/ipvs/ip_vs_ctl.c`): `ip_vs_stats` has two header lines, then
//! the five totals (connections, incoming/outgoing packets, incoming/outgoing bytes) in hex;
//! `ip_vs` lists each virtual service (`TCP|UDP <hex addr>:<hex port> <scheduler>` or
//! `FWM <mark> <scheduler>`) followed by its real servers
//! (`-> <hex addr>:<hex port> <forward> <weight> <active> <inactive>`).
//! Like node_exporter, backends whose selected labels are equal are summed, and an IPv6 service
//! (printed by the kernel as `[addr]:port`) fails the collection. No IPVS (no `ip_vs_stats`)
//! writes nothing.

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use serde::Deserialize;

use crate::collect::registry::CollectorModule;
use crate::collect::{CollectError, Collector, MetricType, ParseError, Sink};
use crate::config::Issue;
use crate::host::{HostRoot, read_into};

/// Registry entry.
pub struct Module;

/// A label of the per-backend gauges (node_exporter's `--collector.ipvs.backend-labels`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendLabel {
    /// The virtual address (empty for a firewall-mark service).
    LocalAddress,
    /// The virtual port.
    LocalPort,
    /// The real server's address.
    RemoteAddress,
    /// The real server's port.
    RemotePort,
    /// `TCP`, `UDP` or `FWM`.
    Proto,
    /// The firewall mark of a `FWM` service (empty otherwise).
    LocalMark,
}

/// Every backend label, in node_exporter's order (the order labels are written in).
pub const ALL_LABELS: [BackendLabel; 6] = [
    BackendLabel::LocalAddress,
    BackendLabel::LocalPort,
    BackendLabel::RemoteAddress,
    BackendLabel::RemotePort,
    BackendLabel::Proto,
    BackendLabel::LocalMark,
];

impl BackendLabel {
    fn name(self) -> &'static str {
        match self {
            Self::LocalAddress => "local_address",
            Self::LocalPort => "local_port",
            Self::RemoteAddress => "remote_address",
            Self::RemotePort => "remote_port",
            Self::Proto => "proto",
            Self::LocalMark => "local_mark",
        }
    }
}

/// `collectors.ipvs`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Whether the collector runs.
    pub enabled: bool,
    /// Labels of the `node_ipvs_backend_*` gauges; backends equal in these are summed.
    pub backend_labels: Vec<BackendLabel>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            backend_labels: ALL_LABELS.to_vec(),
        }
    }
}

impl Config {
    fn check(&self, key: &str, issues: &mut Vec<Issue>) {
        for (i, l) in self.backend_labels.iter().enumerate() {
            if self.backend_labels[..i].contains(l) {
                issues.push(Issue::new(
                    format!("{key}.backend_labels"),
                    format!("{} is listed twice", l.name()),
                ));
            }
        }
    }
}

crate::collector_config!(Config);

impl CollectorModule for Module {
    type Config = Config;
    fn build(cfg: &Config, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Ipvs {
            stats_path: host.proc("net/ip_vs_stats"),
            backends_path: host.proc("net/ip_vs"),
            labels: ALL_LABELS
                .into_iter()
                .filter(|l| cfg.backend_labels.contains(l))
                .collect(),
            buf: String::with_capacity(1024),
            values: String::with_capacity(64),
        })
    }
}

/// The totals of `ip_vs_stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Connections.
    pub connections: u64,
    /// Incoming packets.
    pub incoming_packets: u64,
    /// Outgoing packets.
    pub outgoing_packets: u64,
    /// Incoming bytes.
    pub incoming_bytes: u64,
    /// Outgoing bytes.
    pub outgoing_bytes: u64,
}

/// Parses `ip_vs_stats`: the third line holds the five totals in hex.
pub fn parse_stats(text: &str) -> Result<Totals, ParseError> {
    let mut lines = text.splitn(4, '\n');
    let (Some(_), Some(_), Some(line), Some(_)) =
        (lines.next(), lines.next(), lines.next(), lines.next())
    else {
        return Err(ParseError::new(1, "too short"));
    };
    let mut v = [0u64; 5];
    let mut fields = line.split_ascii_whitespace();
    for slot in &mut v {
        let f = fields
            .next()
            .ok_or_else(|| ParseError::new(3, "expected 5 fields"))?;
        *slot = u64::from_str_radix(f, 16)
            .map_err(|_| ParseError::new(3, format!("invalid hex value {f:?}")))?;
    }
    if fields.next().is_some() {
        return Err(ParseError::new(3, "expected 5 fields"));
    }
    Ok(Totals {
        connections: v[0],
        incoming_packets: v[1],
        outgoing_packets: v[2],
        incoming_bytes: v[3],
        outgoing_bytes: v[4],
    })
}

/// One real server of one virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend<'a> {
    /// Virtual address; `None` for a firewall-mark service.
    pub local_address: Option<IpAddr>,
    /// Virtual port (0 for a firewall-mark service).
    pub local_port: u16,
    /// Real server address.
    pub remote_address: IpAddr,
    /// Real server port.
    pub remote_port: u16,
    /// `TCP`, `UDP` or `FWM`.
    pub proto: &'a str,
    /// Firewall mark (empty unless `FWM`).
    pub local_mark: &'a str,
    /// Weight.
    pub weight: u64,
    /// Active connections.
    pub active: u64,
    /// Inactive connections.
    pub inactive: u64,
}

/// `<8 or 32 hex digits>:<hex port>`; an IPv4-mapped IPv6 address becomes IPv4 (it is printed
/// that way by node_exporter too).
fn parse_ip_port(s: &str, line: usize) -> Result<(IpAddr, u16), ParseError> {
    let bad = || ParseError::new(line, format!("invalid address:port {s:?}"));
    let (ip, port) = s.split_once(':').ok_or_else(bad)?;
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(ip, 16).map_err(|_| bad())?,
        )),
        32 => {
            let v6 = Ipv6Addr::from(u128::from_str_radix(ip, 16).map_err(|_| bad())?);
            match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            }
        }
        _ => return Err(bad()),
    };
    if !ip_is_hex(s.split_once(':').map_or("", |p| p.0)) {
        return Err(bad());
    }
    let port = u16::from_str_radix(port, 16).map_err(|_| bad())?;
    Ok((ip, port))
}

/// `from_str_radix` accepts a leading `+`; the kernel never writes one.
fn ip_is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Parses `ip_vs`, calling `f` for each real server.
pub fn parse_backends<'a>(text: &'a str, mut f: impl FnMut(Backend<'a>)) -> Result<(), ParseError> {
    let mut service: Option<(Option<IpAddr>, u16, &str, &str)> = None;
    for (n, line) in text.lines().enumerate() {
        let mut fields = line.split_ascii_whitespace();
        let Some(first) = fields.next() else {
            continue;
        };
        let second = fields.next();
        if first == "IP" || first == "Prot" || second == Some("RemoteAddress:Port") {
            continue;
        }
        match (first, second) {
            ("TCP" | "UDP", Some(addr)) => {
                let (ip, port) = parse_ip_port(addr, n + 1)?;
                service = Some((Some(ip), port, first, ""));
            }
            ("FWM", Some(mark)) => service = Some((None, 0, first, mark)),
            ("->", Some(addr)) => {
                let rest = [fields.next(), fields.next(), fields.next(), fields.next()];
                let [Some(_forward), Some(w), Some(a), Some(i)] = rest else {
                    continue;
                };
                let (remote_address, remote_port) = parse_ip_port(addr, n + 1)?;
                let num = |s: &str| {
                    s.parse::<u64>()
                        .map_err(|_| ParseError::new(n + 1, format!("invalid number {s:?}")))
                };
                let (local_address, local_port, proto, local_mark) =
                    service.unwrap_or((None, 0, "", ""));
                f(Backend {
                    local_address,
                    local_port,
                    remote_address,
                    remote_port,
                    proto,
                    local_mark,
                    weight: num(w)?,
                    active: num(a)?,
                    inactive: num(i)?,
                });
            }
            _ => {}
        }
    }
    Ok(())
}

struct Ipvs {
    stats_path: PathBuf,
    backends_path: PathBuf,
    /// Selected labels, in node_exporter's order.
    labels: Vec<BackendLabel>,
    buf: String,
    /// Rendered label values of one series (reused).
    values: String,
}

/// A backend with the unselected labels blanked, so equal keys can be summed.
fn masked<'a>(b: Backend<'a>, labels: &[BackendLabel]) -> Backend<'a> {
    let has = |l| labels.contains(&l);
    Backend {
        local_address: if has(BackendLabel::LocalAddress) {
            b.local_address
        } else {
            None
        },
        local_port: if has(BackendLabel::LocalPort) {
            b.local_port
        } else {
            0
        },
        remote_address: if has(BackendLabel::RemoteAddress) {
            b.remote_address
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        },
        remote_port: if has(BackendLabel::RemotePort) {
            b.remote_port
        } else {
            0
        },
        proto: if has(BackendLabel::Proto) {
            b.proto
        } else {
            ""
        },
        local_mark: if has(BackendLabel::LocalMark) {
            b.local_mark
        } else {
            ""
        },
        ..b
    }
}

fn key_cmp(a: &Backend<'_>, b: &Backend<'_>) -> Ordering {
    (
        a.local_address,
        a.local_port,
        a.remote_address,
        a.remote_port,
        a.proto,
        a.local_mark,
    )
        .cmp(&(
            b.local_address,
            b.local_port,
            b.remote_address,
            b.remote_port,
            b.proto,
            b.local_mark,
        ))
}

impl Collector for Ipvs {
    fn name(&self) -> &'static str {
        "ipvs"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        if !read_into(&self.stats_path, &mut self.buf)? {
            return Ok(()); // IPVS is not loaded
        }
        let t = parse_stats(&self.buf).map_err(|e| CollectError::parse(&self.stats_path, e))?;
        sink.counter(
            "node_ipvs_connections_total",
            "The total number of connections made.",
            t.connections as f64,
        );
        sink.counter(
            "node_ipvs_incoming_packets_total",
            "The total number of incoming packets.",
            t.incoming_packets as f64,
        );
        sink.counter(
            "node_ipvs_outgoing_packets_total",
            "The total number of outgoing packets.",
            t.outgoing_packets as f64,
        );
        sink.counter(
            "node_ipvs_incoming_bytes_total",
            "The total amount of incoming data.",
            t.incoming_bytes as f64,
        );
        sink.counter(
            "node_ipvs_outgoing_bytes_total",
            "The total amount of outgoing data.",
            t.outgoing_bytes as f64,
        );

        if !read_into(&self.backends_path, &mut self.buf)? {
            return Ok(());
        }
        let mut backends = Vec::new();
        let labels = &self.labels;
        parse_backends(&self.buf, |b| backends.push(masked(b, labels)))
            .map_err(|e| CollectError::parse(&self.backends_path, e))?;
        backends.sort_by(key_cmp);
        backends.dedup_by(|later, kept| {
            if key_cmp(later, kept) != Ordering::Equal {
                return false;
            }
            kept.active += later.active;
            kept.inactive += later.inactive;
            kept.weight += later.weight;
            true
        });

        // Label values of series i are rendered once into `values`; `ends` marks each value.
        let per = labels.len();
        let mut ends: Vec<usize> = Vec::with_capacity(backends.len() * per);
        self.values.clear();
        for b in &backends {
            for l in labels {
                let v = &mut self.values;
                // Writing to a String cannot fail.
                let _ = match l {
                    BackendLabel::LocalAddress => match b.local_address {
                        Some(ip) => write!(v, "{ip}"),
                        None => Ok(()),
                    },
                    BackendLabel::LocalPort => write!(v, "{}", b.local_port),
                    BackendLabel::RemoteAddress => write!(v, "{}", b.remote_address),
                    BackendLabel::RemotePort => write!(v, "{}", b.remote_port),
                    BackendLabel::Proto => {
                        v.push_str(b.proto);
                        Ok(())
                    }
                    BackendLabel::LocalMark => {
                        v.push_str(b.local_mark);
                        Ok(())
                    }
                };
                ends.push(v.len());
            }
        }
        let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(per);
        type Pick = fn(&Backend<'_>) -> u64;
        let gauges: [(&str, &str, Pick); 3] = [
            (
                "node_ipvs_backend_connections_active",
                "The current active connections by local and remote address.",
                |b| b.active,
            ),
            (
                "node_ipvs_backend_connections_inactive",
                "The current inactive connections by local and remote address.",
                |b| b.inactive,
            ),
            (
                "node_ipvs_backend_weight",
                "The current backend weight by local and remote address.",
                |b| b.weight,
            ),
        ];
        for (name, help, pick) in gauges {
            if backends.is_empty() {
                break;
            }
            let mut fam = sink.family(name, help, MetricType::Gauge);
            let mut start = 0;
            for (i, b) in backends.iter().enumerate() {
                pairs.clear();
                for (j, l) in labels.iter().enumerate() {
                    let end = ends[i * per + j];
                    pairs.push((l.name(), &self.values[start..end]));
                    start = end;
                }
                fam.sample(&pairs, pick(b) as f64);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{self, collect_once, fixture_host, samples};

    fn collect(cfg: &Config) -> Sink {
        let host = fixture_host("legacy");
        collect_once::<Module>(cfg, &host)
    }

    #[test]
    fn recorded_stats() {
        let t = parse_stats(include_str!(
            "../../../tests/fixtures/hosts/legacy/proc/net/ip_vs_stats"
        ))
        .expect("parse");
        assert_eq!(
            t,
            Totals {
                connections: 0x23F1B5,
                incoming_packets: 0x2E0C4D1A,
                outgoing_packets: 0,
                incoming_bytes: 0x6B3C8F0A21,
                outgoing_bytes: 0,
            }
        );
        assert_eq!(
            parse_stats("a\nb\n").map(|_| ()),
            Err(ParseError::new(1, "too short"))
        );
    }

    #[test]
    fn legacy_tree_with_all_labels() {
        let sink = collect(&Config::default());
        assert_eq!(
            samples(&sink, "node_ipvs_connections_total"),
            [(String::new(), 2355637.0)]
        );
        let active = samples(&sink, "node_ipvs_backend_connections_active");
        assert_eq!(active.len(), 5);
        assert_eq!(
            active[0],
            (
                r#"local_address="",local_port="0",remote_address="10.20.20.21",remote_port="0",proto="FWM",local_mark="0000000A""#.to_string(),
                12.0
            )
        );
        assert_eq!(
            active[1],
            (
                r#"local_address="10.20.0.100",local_port="80",remote_address="10.20.20.21",remote_port="8080",proto="TCP",local_mark="""#.to_string(),
                241.0
            )
        );
    }

    #[test]
    fn fewer_labels_sum_backends() {
        let cfg = Config {
            enabled: true,
            backend_labels: vec![BackendLabel::RemoteAddress],
        };
        let sink = collect(&cfg);
        assert_eq!(
            samples(&sink, "node_ipvs_backend_connections_active"),
            [
                (
                    r#"remote_address="10.20.20.21""#.to_string(),
                    12.0 + 241.0 + 3.0
                ),
                (r#"remote_address="10.20.20.22""#.to_string(), 230.0 + 0.0),
            ]
        );
        assert_eq!(
            samples(&sink, "node_ipvs_backend_weight"),
            [
                (r#"remote_address="10.20.20.21""#.to_string(), 3.0),
                (r#"remote_address="10.20.20.22""#.to_string(), 2.0),
            ]
        );
    }

    #[test]
    fn ipv6_service_is_an_error_like_node_exporter() {
        let text = "TCP  [2001:0db8:0000:0000:0000:0000:0000:0001]:0050 rr\n";
        assert!(parse_backends(text, |_| {}).is_err());
        let mut got = Vec::new();
        parse_backends(
            "UDP  00000000000000000000FFFF0A000001:0035 rr\n  -> 20010DB8000000000000000000000002:0035 Masq 1 0 4\n",
            |b| got.push((b.local_address, b.remote_address.to_string(), b.inactive)),
        )
        .expect("hex v6");
        assert_eq!(
            got,
            [(
                Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
                "2001:db8::2".to_string(),
                4
            )]
        );
    }

    #[test]
    fn duplicate_label_is_an_issue() {
        let cfg = Config {
            enabled: true,
            backend_labels: vec![BackendLabel::Proto, BackendLabel::Proto],
        };
        let mut issues = Vec::new();
        cfg.check("collectors.ipvs", &mut issues);
        assert_eq!(issues.len(), 1);
    }

    #[test]
    fn missing_files_write_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
