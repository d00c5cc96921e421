//! `nfsd` collector: NFS server statistics (`node_nfsd_*`) from `/proc/net/rpc/nfsd`
//! (fs/nfsd/stats.c `nfsd_proc_show` for `rc`, `fh`, `io`, `th`, `ra`; then
//! net/sunrpc/stats.c `svc_seq_show` for `net`, `rpc`, `procN` and `proc4ops`; field meanings:
//! <https://www.svennd.be/nfsd-stats-explained-procnetrpcnfsd/>).
//!
//! Semantics follow node_exporter 1.5: lines absent on a kernel export 0 (for example `ra`,
//! removed in Linux 5.x), the `Null` procedures are not exported, only 33 NFSv4 operations are
//! (at the operation numbers node_exporter 1.5 reads them from), and any malformed or unknown
//! line fails the whole collection.

use std::path::PathBuf;

use super::nfs::{V2_PROCS, V3_PROCS, counted, exact, head, requests, split_line};
use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, MetricType, ParseError, Sink};
use crate::host::{HostRoot, read_into};

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Nfsd {
            path: host.proc("net/rpc/nfsd"),
            buf: String::with_capacity(2048),
        })
    }
}

struct Nfsd {
    path: PathBuf,
    buf: String,
}

/// The NFSv4 operations exported, with the position of their counter on the `proc4ops` line
/// (1-based, after the count), as node_exporter 1.5 reads them.
pub const V4_OPS: [(&str, usize); 33] = [
    ("Access", 4),
    ("Close", 5),
    ("Commit", 6),
    ("Create", 7),
    ("DelegPurge", 8),
    ("DelegReturn", 9),
    ("GetAttr", 10),
    ("GetFH", 11),
    ("Link", 12),
    ("Lock", 13),
    ("Lockt", 14),
    ("Locku", 15),
    ("Lookup", 16),
    ("LookupRoot", 17),
    ("Nverify", 18),
    ("Open", 19),
    ("OpenAttr", 20),
    ("OpenConfirm", 21),
    ("OpenDgrd", 22),
    ("PutFH", 23),
    ("Read", 26),
    ("ReadDir", 27),
    ("ReadLink", 28),
    ("Remove", 29),
    ("Rename", 30),
    ("Renew", 31),
    ("RestoreFH", 32),
    ("SaveFH", 33),
    ("SecInfo", 34),
    ("SetAttr", 35),
    ("Verify", 36),
    ("Write", 37),
    ("RelLockOwner", 38),
];

/// Everything exported from `/proc/net/rpc/nfsd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStats {
    /// `rc`: reply cache hits, misses, uncached.
    pub reply_cache: [u64; 3],
    /// `fh`: the first value is stale file handles.
    pub file_handles: [u64; 5],
    /// `io`: bytes read, bytes written.
    pub io: [u64; 2],
    /// `th`: threads, times all threads were busy (the rest of the line is ignored).
    pub threads: [u64; 2],
    /// `ra`: cache size, 10 histogram buckets, not found.
    pub read_ahead: [u64; 12],
    /// `net`: packets, udp packets, tcp packets, tcp connections.
    pub net: [u64; 4],
    /// `rpc`: calls, bad calls, bad format, bad auth, bad client.
    pub rpc: [u64; 5],
    /// `proc2` counters in [`V2_PROCS`] order.
    pub v2: [u64; 18],
    /// `proc3` counters in [`V3_PROCS`] order.
    pub v3: [u64; 22],
    /// `proc4ops` counters 1..=38 (index 0 is unused), see [`V4_OPS`].
    pub v4_ops: [u64; 39],
}

impl Default for ServerStats {
    fn default() -> Self {
        Self {
            reply_cache: [0; 3],
            file_handles: [0; 5],
            io: [0; 2],
            threads: [0; 2],
            read_ahead: [0; 12],
            net: [0; 4],
            rpc: [0; 5],
            v2: [0; 18],
            v3: [0; 22],
            v4_ops: [0; 39],
        }
    }
}

/// Parses `/proc/net/rpc/nfsd`.
pub fn parse(text: &str) -> Result<ServerStats, ParseError> {
    let mut s = ServerStats::default();
    let mut values = Vec::with_capacity(80);
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        // `th` is followed by a histogram of decimals that kernels print as zeros.
        let limit = match line.split_ascii_whitespace().next() {
            Some("th") => 2,
            _ => usize::MAX,
        };
        let key = split_line(line, n, limit, &mut values)?;
        match key {
            "rc" => exact(&values, &mut s.reply_cache, n, key)?,
            "fh" => exact(&values, &mut s.file_handles, n, key)?,
            "io" => exact(&values, &mut s.io, n, key)?,
            "th" => exact(&values, &mut s.threads, n, key)?,
            "ra" => exact(&values, &mut s.read_ahead, n, key)?,
            "net" => exact(&values, &mut s.net, n, key)?,
            "rpc" => exact(&values, &mut s.rpc, n, key)?,
            "proc2" => head(counted(&values, 18, n, key)?, &mut s.v2),
            "proc3" => head(counted(&values, 22, n, key)?, &mut s.v3),
            "proc4" => {
                let mut null_compound = [0; 2];
                exact(counted(&values, 2, n, key)?, &mut null_compound, n, key)?;
            }
            "proc4ops" => {
                let counters = counted(&values, 39, n, key)?;
                s.v4_ops[1..].copy_from_slice(&counters[..38]);
            }
            _ => return Err(ParseError::new(n, format!("unknown line {key:?}"))),
        }
    }
    Ok(s)
}

impl Collector for Nfsd {
    fn name(&self) -> &'static str {
        "nfsd"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        if !read_into(&self.path, &mut self.buf)? {
            return Ok(());
        }
        let s = parse(&self.buf).map_err(|e| CollectError::parse(&self.path, e))?;
        let counters: [(&str, &str, u64); 9] = [
            (
                "node_nfsd_reply_cache_hits_total",
                "Total number of NFSd Reply Cache hits (client lost server response).",
                s.reply_cache[0],
            ),
            (
                "node_nfsd_reply_cache_misses_total",
                "Total number of NFSd Reply Cache an operation that requires caching (idempotent).",
                s.reply_cache[1],
            ),
            (
                "node_nfsd_reply_cache_nocache_total",
                "Total number of NFSd Reply Cache non-idempotent operations (rename/delete/…).",
                s.reply_cache[2],
            ),
            (
                "node_nfsd_file_handles_stale_total",
                "Total number of NFSd stale file handles",
                s.file_handles[0],
            ),
            (
                "node_nfsd_disk_bytes_read_total",
                "Total NFSd bytes read.",
                s.io[0],
            ),
            (
                "node_nfsd_disk_bytes_written_total",
                "Total NFSd bytes written.",
                s.io[1],
            ),
            (
                "node_nfsd_read_ahead_cache_not_found_total",
                "Total number of NFSd read ahead cache not found.",
                s.read_ahead[11],
            ),
            (
                "node_nfsd_connections_total",
                "Total number of NFSd TCP connections.",
                s.net[3],
            ),
            (
                "node_nfsd_server_rpcs_total",
                "Total number of NFSd RPCs.",
                s.rpc[0],
            ),
        ];
        for (name, help, v) in counters {
            sink.counter(name, help, v as f64);
        }
        sink.gauge(
            "node_nfsd_server_threads",
            "Total number of NFSd kernel threads that are running.",
            s.threads[0] as f64,
        );
        sink.gauge(
            "node_nfsd_read_ahead_cache_size_blocks",
            "How large the read ahead cache is in blocks.",
            s.read_ahead[0] as f64,
        );
        sink.family(
            "node_nfsd_packets_total",
            "Total NFSd network packets (sent+received) by protocol type.",
            MetricType::Counter,
        )
        .sample(&[("proto", "udp")], s.net[1] as f64)
        .sample(&[("proto", "tcp")], s.net[2] as f64);
        sink.family(
            "node_nfsd_rpc_errors_total",
            "Total number of NFSd RPC errors by error type.",
            MetricType::Counter,
        )
        .sample(&[("error", "fmt")], s.rpc[2] as f64)
        .sample(&[("error", "auth")], s.rpc[3] as f64)
        .sample(&[("error", "cInt")], s.rpc[4] as f64);
        let mut f = sink.family(
            "node_nfsd_requests_total",
            "Total number NFSd Requests by method and protocol.",
            MetricType::Counter,
        );
        // `Null` (the first procedure) is not exported for the server.
        requests(&mut f, "2", &V2_PROCS[1..], &s.v2[1..]);
        requests(&mut f, "3", &V3_PROCS[1..], &s.v3[1..]);
        for (name, at) in V4_OPS {
            f.sample(&[("method", name), ("proto", "4")], s.v4_ops[at] as f64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{self, collect_file};

    #[test]
    fn recorded_rhel8_server() {
        let s = parse(include_str!(
            "../../../tests/fixtures/hosts/legacy/proc/net/rpc/nfsd"
        ))
        .expect("legacy");
        assert_eq!(s.reply_cache, [0, 2134241, 895741]);
        assert_eq!(s.file_handles, [17, 0, 0, 0, 0]);
        assert_eq!(s.io, [141656473600, 187904819200]);
        assert_eq!(s.threads, [32, 0]);
        assert_eq!(s.read_ahead, [64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(s.net, [3029981, 12, 3029969, 714]);
        assert_eq!(s.rpc, [3029977, 4, 4, 0, 0]);
        assert_eq!(s.v2, [0; 18]);
        assert_eq!(s.v3[1], 501234);
        assert_eq!(s.v3[21], 512331);
        assert_eq!(s.v4_ops[4], 312331); // Access
        assert_eq!(s.v4_ops[23], 1480987); // PutFH
        assert_eq!(s.v4_ops[35], 12231); // SetAttr
        assert_eq!(s.v4_ops[38], 0);
    }

    #[test]
    fn modern_kernel_without_read_ahead_line() {
        let ops: String = (1..=40).map(|v| format!(" {v}")).collect();
        let text = format!("rc 1 2 3\nth 8 0 0.000\nproc4ops 40{ops}\n");
        let s = parse(&text).expect("parse");
        assert_eq!(s.read_ahead, [0; 12]);
        assert_eq!(s.threads, [8, 0]);
        assert_eq!(s.v4_ops[37], 37);
        assert_eq!(s.v4_ops[38], 38);
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert_eq!(
            parse("th 8\n"),
            Err(ParseError::new(1, "\"th\" line has 1 values, expected 2"))
        );
        assert_eq!(
            parse("proc4 3 1 2 3\n"),
            Err(ParseError::new(
                1,
                "\"proc4\" line has 3 values, expected 2"
            ))
        );
        assert_eq!(
            parse("proc4ops 2 1 2\n"),
            Err(ParseError::new(
                1,
                "\"proc4ops\" line has 2 counters, expected at least 39"
            ))
        );
        assert_eq!(
            parse("rc 1 2\n"),
            Err(ParseError::new(1, "\"rc\" line has 2 values, expected 3"))
        );
        assert_eq!(
            parse("wdeleg 1\n"),
            Err(ParseError::new(1, "unknown line \"wdeleg\""))
        );
    }

    #[test]
    fn collects_all_families() {
        let sink = collect_file::<Module>(
            "net/rpc/nfsd",
            include_str!("../../../tests/fixtures/hosts/legacy/proc/net/rpc/nfsd"),
        );
        assert_eq!(sink.families().len(), 14);
        let requests = sink
            .families()
            .find(|f| f.name() == "node_nfsd_requests_total")
            .expect("requests");
        assert_eq!(requests.samples().len(), 17 + 21 + 33);
    }

    #[test]
    fn missing_file_writes_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
