//! `nfs` collector: NFS client RPC statistics (`node_nfs_*`) from `/proc/net/rpc/nfs`
//! (net/sunrpc/stats.c `rpc_proc_show`: `net`, `rpc` and one `procN <count> <per-procedure
//! counters>` line per registered NFS version, in the procedure order of fs/nfs/nfs{2,3,4}xdr.c).
//!
//! Like node_exporter 1.5, every version's procedures are exported even when the kernel has no
//! line for that version (then they are 0), an NFSv4 line shorter than the 59 known procedures
//! is zero-padded, and any malformed or unknown line fails the whole collection. The line
//! splitting helpers are shared with the `nfsd` collector.

use std::path::PathBuf;

use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, MetricType, ParseError, Sink};
use crate::host::{HostRoot, read_into};

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Nfs {
            path: host.proc("net/rpc/nfs"),
            buf: String::with_capacity(2048),
        })
    }
}

struct Nfs {
    path: PathBuf,
    buf: String,
}

/// NFSv2 procedure names (`proc2`), as node_exporter labels them.
pub const V2_PROCS: [&str; 18] = [
    "Null", "GetAttr", "SetAttr", "Root", "Lookup", "ReadLink", "Read", "WrCache", "Write",
    "Create", "Remove", "Rename", "Link", "SymLink", "MkDir", "RmDir", "ReadDir", "FsStat",
];

/// NFSv3 procedure names (`proc3`), as node_exporter labels them.
pub const V3_PROCS: [&str; 22] = [
    "Null",
    "GetAttr",
    "SetAttr",
    "Lookup",
    "Access",
    "ReadLink",
    "Read",
    "Write",
    "Create",
    "MkDir",
    "SymLink",
    "MkNod",
    "Remove",
    "RmDir",
    "Rename",
    "Link",
    "ReadDir",
    "ReadDirPlus",
    "FsStat",
    "FsInfo",
    "PathConf",
    "Commit",
];

/// The first 59 NFSv4 client procedures (`proc4`), as node_exporter labels them; later
/// procedures of newer kernels are not exported.
pub const CLIENT_V4_PROCS: [&str; 59] = [
    "Null",
    "Read",
    "Write",
    "Commit",
    "Open",
    "OpenConfirm",
    "OpenNoattr",
    "OpenDowngrade",
    "Close",
    "Setattr",
    "FsInfo",
    "Renew",
    "SetClientID",
    "SetClientIDConfirm",
    "Lock",
    "Lockt",
    "Locku",
    "Access",
    "Getattr",
    "Lookup",
    "LookupRoot",
    "Remove",
    "Rename",
    "Link",
    "Symlink",
    "Create",
    "Pathconf",
    "StatFs",
    "ReadLink",
    "ReadDir",
    "ServerCaps",
    "DelegReturn",
    "GetACL",
    "SetACL",
    "FsLocations",
    "ReleaseLockowner",
    "Secinfo",
    "FsidPresent",
    "ExchangeID",
    "CreateSession",
    "DestroySession",
    "Sequence",
    "GetLeaseTime",
    "ReclaimComplete",
    "LayoutGet",
    "GetDeviceInfo",
    "LayoutCommit",
    "LayoutReturn",
    "SecinfoNoName",
    "TestStateID",
    "FreeStateID",
    "GetDeviceList",
    "BindConnToSession",
    "DestroyClientID",
    "Seek",
    "Allocate",
    "DeAllocate",
    "LayoutStats",
    "Clone",
];

/// Everything exported from `/proc/net/rpc/nfs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientStats {
    /// `net`: packets, udp packets, tcp packets, tcp connections.
    pub net: [u64; 4],
    /// `rpc`: calls, retransmissions, authentication refreshes.
    pub rpc: [u64; 3],
    /// `proc2` counters in [`V2_PROCS`] order.
    pub v2: [u64; 18],
    /// `proc3` counters in [`V3_PROCS`] order.
    pub v3: [u64; 22],
    /// `proc4` counters in [`CLIENT_V4_PROCS`] order.
    pub v4: [u64; 59],
}

impl Default for ClientStats {
    fn default() -> Self {
        Self {
            net: [0; 4],
            rpc: [0; 3],
            v2: [0; 18],
            v3: [0; 22],
            v4: [0; 59],
        }
    }
}

/// Splits a line into its key and its unsigned decimal values (into `values`, cleared first),
/// reading at most `limit` values. A line without any value is an error.
pub(crate) fn split_line<'a>(
    line: &'a str,
    n: usize,
    limit: usize,
    values: &mut Vec<u64>,
) -> Result<&'a str, ParseError> {
    values.clear();
    let mut parts = line.split_ascii_whitespace();
    let key = parts.next().unwrap_or("");
    for part in parts.take(limit) {
        // Digits only: a sign is not accepted, as with Go's strconv.ParseUint.
        let v = part
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse::<u64>().ok())
            .flatten()
            .ok_or_else(|| ParseError::new(n, format!("invalid value {part:?} in {key:?} line")))?;
        values.push(v);
    }
    if values.is_empty() {
        return Err(ParseError::new(n, format!("line without values: {line:?}")));
    }
    Ok(key)
}

/// Copies exactly `N` values into `out`.
pub(crate) fn exact<const N: usize>(
    values: &[u64],
    out: &mut [u64; N],
    n: usize,
    key: &str,
) -> Result<(), ParseError> {
    if values.len() != N {
        return Err(ParseError::new(
            n,
            format!("{key:?} line has {} values, expected {N}", values.len()),
        ));
    }
    out.copy_from_slice(values);
    Ok(())
}

/// The counters of a `procN <count> <counters...>` line: the count must match the number of
/// counters and be at least `min`.
pub(crate) fn counted<'v>(
    values: &'v [u64],
    min: u64,
    n: usize,
    key: &str,
) -> Result<&'v [u64], ParseError> {
    let (&count, rest) = values
        .split_first()
        .ok_or_else(|| ParseError::new(n, format!("empty {key:?} line")))?;
    if count != rest.len() as u64 {
        return Err(ParseError::new(
            n,
            format!(
                "{key:?} line announces {count} counters and has {}",
                rest.len()
            ),
        ));
    }
    if count < min {
        return Err(ParseError::new(
            n,
            format!("{key:?} line has {count} counters, expected at least {min}"),
        ));
    }
    Ok(rest)
}

/// Copies the first `N` counters (at least `N` are required).
pub(crate) fn head<const N: usize>(counters: &[u64], out: &mut [u64; N]) {
    out.copy_from_slice(&counters[..N]);
}

/// Parses `/proc/net/rpc/nfs`.
pub fn parse(text: &str) -> Result<ClientStats, ParseError> {
    let mut s = ClientStats::default();
    let mut values = Vec::with_capacity(80);
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let key = split_line(line, n, usize::MAX, &mut values)?;
        match key {
            "net" => exact(&values, &mut s.net, n, key)?,
            "rpc" => exact(&values, &mut s.rpc, n, key)?,
            "proc2" => head(counted(&values, 18, n, key)?, &mut s.v2),
            "proc3" => head(counted(&values, 22, n, key)?, &mut s.v3),
            "proc4" => {
                let counters = counted(&values, 0, n, key)?;
                let k = counters.len().min(s.v4.len());
                s.v4 = [0; 59];
                s.v4[..k].copy_from_slice(&counters[..k]);
            }
            _ => return Err(ParseError::new(n, format!("unknown line {key:?}"))),
        }
    }
    Ok(s)
}

/// Writes one `node_nfs{,d}_requests_total` series per procedure.
pub(crate) fn requests(
    f: &mut crate::collect::FamilyWriter<'_>,
    proto: &str,
    names: &[&str],
    counters: &[u64],
) {
    for (name, v) in names.iter().zip(counters) {
        f.sample(&[("method", name), ("proto", proto)], *v as f64);
    }
}

impl Collector for Nfs {
    fn name(&self) -> &'static str {
        "nfs"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        if !read_into(&self.path, &mut self.buf)? {
            return Ok(());
        }
        let s = parse(&self.buf).map_err(|e| CollectError::parse(&self.path, e))?;
        sink.family(
            "node_nfs_packets_total",
            "Total NFSd network packets (sent+received) by protocol type.",
            MetricType::Counter,
        )
        .sample(&[("protocol", "udp")], s.net[1] as f64)
        .sample(&[("protocol", "tcp")], s.net[2] as f64);
        sink.counter(
            "node_nfs_connections_total",
            "Total number of NFSd TCP connections.",
            s.net[3] as f64,
        );
        sink.counter(
            "node_nfs_rpcs_total",
            "Total number of RPCs performed.",
            s.rpc[0] as f64,
        );
        sink.counter(
            "node_nfs_rpc_retransmissions_total",
            "Number of RPC transmissions performed.",
            s.rpc[1] as f64,
        );
        sink.counter(
            "node_nfs_rpc_authentication_refreshes_total",
            "Number of RPC authentication refreshes performed.",
            s.rpc[2] as f64,
        );
        let mut f = sink.family(
            "node_nfs_requests_total",
            "Number of NFS procedures invoked.",
            MetricType::Counter,
        );
        requests(&mut f, "2", &V2_PROCS, &s.v2);
        requests(&mut f, "3", &V3_PROCS, &s.v3);
        requests(&mut f, "4", &CLIENT_V4_PROCS, &s.v4);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{self, collect_file, family_sizes};

    #[test]
    fn recorded_rhel8_client_without_nfsv2() {
        let s = parse(include_str!(
            "../../../tests/fixtures/hosts/legacy/proc/net/rpc/nfs"
        ))
        .expect("legacy");
        assert_eq!(s.net, [0, 0, 0, 0]);
        assert_eq!(s.rpc, [18274561, 42, 3]);
        assert_eq!(s.v2, [0; 18]);
        assert_eq!(
            s.v3,
            [
                0, 1842231, 20114, 901876, 1176542, 12, 8870213, 4512201, 1203, 211, 4, 0, 1190,
                87, 402, 5, 3921, 18823, 74410, 13, 13, 301877
            ]
        );
        // 69 counters on this kernel: the first 59 are kept.
        assert_eq!(s.v4[..4], [0, 5123456, 3210987, 45012]);
        assert_eq!(s.v4[18], 3412877); // Getattr
        assert_eq!(s.v4[41], 512331); // Sequence
        assert_eq!(s.v4[58], 0); // Clone
    }

    #[test]
    fn short_nfsv4_line_is_zero_padded() {
        let s = parse("net 1 2 3 4\nrpc 5 6 7\nproc4 3 9 8 7\n").expect("parse");
        assert_eq!(s.net, [1, 2, 3, 4]);
        assert_eq!(s.v4[..4], [9, 8, 7, 0]);
        assert_eq!(s.v4[3..], [0; 56]);
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert_eq!(
            parse("net 1 2 3\n"),
            Err(ParseError::new(1, "\"net\" line has 3 values, expected 4"))
        );
        assert_eq!(
            parse("rpc 1 2 3\n\nnet 1 2 3 4\n"),
            Err(ParseError::new(2, "line without values: \"\""))
        );
        assert_eq!(
            parse("rpc 1 2 -3\n"),
            Err(ParseError::new(1, "invalid value \"-3\" in \"rpc\" line"))
        );
        assert_eq!(
            parse("proc3 3 1 2 3\n"),
            Err(ParseError::new(
                1,
                "\"proc3\" line has 3 counters, expected at least 22"
            ))
        );
        assert_eq!(
            parse("proc4 5 1 2\n"),
            Err(ParseError::new(
                1,
                "\"proc4\" line announces 5 counters and has 2"
            ))
        );
        assert_eq!(
            parse("proc9 1 1\n"),
            Err(ParseError::new(1, "unknown line \"proc9\""))
        );
    }

    #[test]
    fn collects_every_version() {
        let sink = collect_file::<Module>(
            "net/rpc/nfs",
            include_str!("../../../tests/fixtures/hosts/legacy/proc/net/rpc/nfs"),
        );
        assert_eq!(
            family_sizes(&sink),
            [
                ("node_nfs_packets_total", 2),
                ("node_nfs_connections_total", 1),
                ("node_nfs_rpcs_total", 1),
                ("node_nfs_rpc_retransmissions_total", 1),
                ("node_nfs_rpc_authentication_refreshes_total", 1),
                ("node_nfs_requests_total", 18 + 22 + 59),
            ]
        );
    }

    #[test]
    fn missing_file_writes_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
