//! Pure parsers for cgroup interface files (no filesystem access).
//!
//! Formats: Documentation/admin-guide/cgroup-v2.rst ("Interface Files": flat keyed
//! `cpu.stat`/`memory.stat`/`memory.events`, nested keyed `io.stat`, `cpu.max`, `memory.max`,
//! PSI `*.pressure` as in Documentation/accounting/psi.rst) and the v1 documents
//! Documentation/admin-guide/cgroup-v1/{cpuacct,memory,blkio-controller}.rst and
//! Documentation/scheduler/sched-bwc.rst (`cpu.stat` throttling fields). `/proc/<pid>/net/dev`
//! is proc(5). Parsers never allocate: they fill caller-owned structs or call back per entry.

use crate::collect::ParseError;

/// Parses an unsigned integer field; `what` names it in the error.
fn num(line: usize, what: &str, s: &str) -> Result<u64, ParseError> {
    s.parse()
        .map_err(|_| ParseError::new(line, format!("invalid {what} {s:?}")))
}

/// Walks a flat keyed file (`key value` per line), calling `f(key, value)` for each line whose
/// value is an unsigned integer. Lines with other values (negative numbers in some v1
/// `memory.stat` fields on old kernels) are skipped rather than failing the whole file.
pub fn flat_keyed(text: &str, mut f: impl FnMut(&str, u64)) -> Result<(), ParseError> {
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let mut it = line.split_ascii_whitespace();
        let (Some(k), Some(v)) = (it.next(), it.next()) else {
            return Err(ParseError::new(i + 1, "expected \"key value\""));
        };
        if let Ok(v) = v.parse::<u64>() {
            f(k, v);
        }
    }
    Ok(())
}

/// A single unsigned integer file (`memory.current`, `cpuacct.usage`, `pids.current`,
/// `memory.failcnt`, `cpu.shares`). `max` (v2's "no limit") is `u64::MAX`.
pub fn single(text: &str) -> Result<u64, ParseError> {
    let t = text.trim();
    if t == "max" {
        return Ok(u64::MAX);
    }
    num(1, "value", t)
}

/// A v1 value that may be negative (`cpu.cfs_quota_us` is `-1` for "no quota"): `None` for
/// negative values.
pub fn signed(text: &str) -> Result<Option<u64>, ParseError> {
    let t = text.trim();
    match t.parse::<i64>() {
        Ok(v) if v < 0 => Ok(None),
        Ok(v) => Ok(Some(v as u64)),
        Err(_) => Err(ParseError::new(1, format!("invalid value {t:?}"))),
    }
}

/// v2 `cpu.max`: `$MAX $PERIOD`, `$MAX` may be `max`. Returns (quota, period), quota `None`
/// when unlimited.
pub fn cpu_max(text: &str) -> Result<(Option<u64>, u64), ParseError> {
    let mut it = text.split_ascii_whitespace();
    let (Some(q), Some(p)) = (it.next(), it.next()) else {
        return Err(ParseError::new(1, "expected \"$MAX $PERIOD\""));
    };
    let quota = if q == "max" {
        None
    } else {
        Some(num(1, "quota", q)?)
    };
    Ok((quota, num(1, "period", p)?))
}

/// CPU counters in nanoseconds, from either version.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuStat {
    /// Total CPU time (ns).
    pub usage_ns: Option<u64>,
    /// User time (ns).
    pub user_ns: u64,
    /// System time (ns).
    pub system_ns: u64,
    /// Elapsed enforcement periods.
    pub periods: u64,
    /// Throttled periods.
    pub throttled_periods: u64,
    /// Throttled time (ns).
    pub throttled_ns: u64,
}

/// v2 `cpu.stat` (microseconds; `throttled_usec`).
pub fn cpu_stat_v2(text: &str, out: &mut CpuStat) -> Result<(), ParseError> {
    flat_keyed(text, |k, v| match k {
        "usage_usec" => out.usage_ns = Some(v.saturating_mul(1000)),
        "user_usec" => out.user_ns = v.saturating_mul(1000),
        "system_usec" => out.system_ns = v.saturating_mul(1000),
        "nr_periods" => out.periods = v,
        "nr_throttled" => out.throttled_periods = v,
        "throttled_usec" => out.throttled_ns = v.saturating_mul(1000),
        _ => {}
    })
}

/// v1 `cpu.stat` of the cpu controller (throttling only; `throttled_time` in ns).
pub fn cpu_stat_v1(text: &str, out: &mut CpuStat) -> Result<(), ParseError> {
    flat_keyed(text, |k, v| match k {
        "nr_periods" => out.periods = v,
        "nr_throttled" => out.throttled_periods = v,
        "throttled_time" => out.throttled_ns = v,
        _ => {}
    })
}

/// v1 `cpuacct.stat`: `user`/`system` in USER_HZ ticks, converted to ns with `ticks_per_second`
/// (runc converts the same way, so the values match cAdvisor's).
pub fn cpuacct_stat(
    text: &str,
    ticks_per_second: u64,
    out: &mut CpuStat,
) -> Result<(), ParseError> {
    let hz = ticks_per_second.max(1);
    flat_keyed(text, |k, v| match k {
        "user" => out.user_ns = v.saturating_mul(1_000_000_000) / hz,
        "system" => out.system_ns = v.saturating_mul(1_000_000_000) / hz,
        _ => {}
    })
}

/// The `memory.stat` fields cAdvisor uses, already resolved for the cgroup version.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MemStat {
    /// Page cache (`total_cache` v1, `file` v2).
    pub cache: u64,
    /// Anonymous memory (`total_rss` v1, `anon` v2).
    pub rss: u64,
    /// Swap (`total_swap` v1; v2 reads `memory.swap.current` instead).
    pub swap: u64,
    /// Mapped files (`total_mapped_file` v1, `file_mapped` v2).
    pub mapped_file: u64,
    /// Inactive file cache (`total_inactive_file` v1, `inactive_file` v2), if present.
    pub inactive_file: Option<u64>,
    /// Page faults of this cgroup only (v1 `pgfault`; v2 has only hierarchical counts).
    pub pgfault: u64,
    /// Major faults of this cgroup only.
    pub pgmajfault: u64,
    /// Page faults including descendants (v1 `total_pgfault`, v2 `pgfault`).
    pub total_pgfault: u64,
    /// Major faults including descendants.
    pub total_pgmajfault: u64,
}

/// v1 `memory.stat` (with `use_hierarchy`, the `total_*` fields, as cAdvisor).
pub fn memory_stat_v1(text: &str, out: &mut MemStat) -> Result<(), ParseError> {
    *out = MemStat::default();
    flat_keyed(text, |k, v| match k {
        "total_cache" => out.cache = v,
        "total_rss" => out.rss = v,
        "total_swap" => out.swap = v,
        "total_mapped_file" => out.mapped_file = v,
        "total_inactive_file" => out.inactive_file = Some(v),
        "pgfault" => out.pgfault = v,
        "pgmajfault" => out.pgmajfault = v,
        "total_pgfault" => out.total_pgfault = v,
        "total_pgmajfault" => out.total_pgmajfault = v,
        _ => {}
    })
}

/// v2 `memory.stat` (hierarchical; container and hierarchy fault counts are the same).
pub fn memory_stat_v2(text: &str, out: &mut MemStat) -> Result<(), ParseError> {
    *out = MemStat::default();
    flat_keyed(text, |k, v| match k {
        "file" => out.cache = v,
        "anon" => out.rss = v,
        "file_mapped" => out.mapped_file = v,
        "inactive_file" => out.inactive_file = Some(v),
        "pgfault" => {
            out.pgfault = v;
            out.total_pgfault = v;
        }
        "pgmajfault" => {
            out.pgmajfault = v;
            out.total_pgmajfault = v;
        }
        _ => {}
    })
}

/// cAdvisor's working set: usage minus inactive file cache, floored at 0.
pub fn working_set(usage: u64, inactive_file: Option<u64>) -> u64 {
    usage.saturating_sub(inactive_file.unwrap_or(0))
}

/// A value of a flat keyed file by key (`memory.events` `max`/`oom_kill`, v1
/// `memory.oom_control` `oom_kill`).
pub fn keyed_value(text: &str, key: &str) -> Result<Option<u64>, ParseError> {
    let mut found = None;
    flat_keyed(text, |k, v| {
        if k == key {
            found = Some(v);
        }
    })?;
    Ok(found)
}

/// PSI totals (microseconds) of one `*.pressure` file: (some, full).
pub fn pressure(text: &str) -> Result<(u64, Option<u64>), ParseError> {
    let mut some = None;
    let mut full = None;
    for (i, line) in text.lines().enumerate() {
        let mut it = line.split_ascii_whitespace();
        let slot = match it.next() {
            Some("some") => &mut some,
            Some("full") => &mut full,
            Some(_) => return Err(ParseError::new(i + 1, "expected some/full")),
            None => continue,
        };
        let total = it
            .find_map(|f| f.strip_prefix("total="))
            .ok_or_else(|| ParseError::new(i + 1, "missing total="))?;
        *slot = Some(num(i + 1, "total", total)?);
    }
    let some = some.ok_or_else(|| ParseError::new(1, "missing \"some\" line"))?;
    Ok((some, full))
}

/// Bytes read and written on one block device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DevIo {
    /// Device major number.
    pub major: u32,
    /// Device minor number.
    pub minor: u32,
    /// Bytes read.
    pub read: u64,
    /// Bytes written.
    pub write: u64,
}

fn dev_numbers(line: usize, s: &str) -> Result<(u32, u32), ParseError> {
    let (ma, mi) = s
        .split_once(':')
        .ok_or_else(|| ParseError::new(line, format!("invalid device {s:?}")))?;
    let ma = ma
        .parse()
        .map_err(|_| ParseError::new(line, format!("invalid device {s:?}")))?;
    let mi = mi
        .parse()
        .map_err(|_| ParseError::new(line, format!("invalid device {s:?}")))?;
    Ok((ma, mi))
}

fn dev_slot(out: &mut Vec<DevIo>, major: u32, minor: u32) -> &mut DevIo {
    let idx = match out
        .iter()
        .position(|d| d.major == major && d.minor == minor)
    {
        Some(i) => i,
        None => {
            out.push(DevIo {
                major,
                minor,
                read: 0,
                write: 0,
            });
            out.len() - 1
        }
    };
    &mut out[idx]
}

/// v2 `io.stat`: `MAJ:MIN rbytes=.. wbytes=.. rios=.. ...` per line; fills `out` (cleared).
pub fn io_stat(text: &str, out: &mut Vec<DevIo>) -> Result<(), ParseError> {
    out.clear();
    for (i, line) in text.lines().enumerate() {
        let mut it = line.split_ascii_whitespace();
        let Some(dev) = it.next() else { continue };
        let (major, minor) = dev_numbers(i + 1, dev)?;
        let slot = dev_slot(out, major, minor);
        for kv in it {
            if let Some(v) = kv.strip_prefix("rbytes=") {
                slot.read = num(i + 1, "rbytes", v)?;
            } else if let Some(v) = kv.strip_prefix("wbytes=") {
                slot.write = num(i + 1, "wbytes", v)?;
            }
        }
    }
    Ok(())
}

/// v1 `blkio.throttle.io_service_bytes[_recursive]`: `MAJ:MIN Op value` lines and a final
/// `Total value` line (skipped); fills `out` (cleared) with the Read and Write operations.
pub fn blkio_service_bytes(text: &str, out: &mut Vec<DevIo>) -> Result<(), ParseError> {
    out.clear();
    for (i, line) in text.lines().enumerate() {
        let mut it = line.split_ascii_whitespace();
        let (Some(dev), Some(op)) = (it.next(), it.next()) else {
            continue; // "Total N" or empty
        };
        let Some(v) = it.next() else {
            continue;
        };
        let (major, minor) = dev_numbers(i + 1, dev)?;
        let v = num(i + 1, "bytes", v)?;
        match op {
            "Read" => dev_slot(out, major, minor).read = v,
            "Write" => dev_slot(out, major, minor).write = v,
            _ => {
                dev_slot(out, major, minor);
            }
        }
    }
    Ok(())
}

/// Number of non-empty lines (`cgroup.procs`: one PID per line).
pub fn count_lines(text: &str) -> u64 {
    text.lines().filter(|l| !l.is_empty()).count() as u64
}

/// The first PID of `cgroup.procs`.
pub fn first_pid(text: &str) -> Option<u32> {
    text.lines().find_map(|l| l.trim().parse().ok())
}

/// Counters of one interface from `/proc/<pid>/net/dev`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetIf {
    /// Interface name.
    pub name: String,
    /// Received bytes, packets, errors, drops.
    pub rx: [u64; 4],
    /// Transmitted bytes, packets, errors, drops.
    pub tx: [u64; 4],
}

/// Interface prefixes cAdvisor ignores in a container's network namespace.
const IGNORED_IF_PREFIXES: &[&str] = &["lo", "veth", "docker", "nerdctl"];

/// `/proc/<pid>/net/dev` (proc(5)): fills `out`, reusing its entries and their name strings;
/// skips the interfaces cAdvisor ignores (`lo`, `veth*`, `docker*`, `nerdctl*`).
pub fn net_dev(text: &str, out: &mut Vec<NetIf>) -> Result<(), ParseError> {
    let mut n = 0;
    for (i, line) in text.lines().enumerate().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if IGNORED_IF_PREFIXES.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let mut f = rest.split_ascii_whitespace();
        let mut vals = [0u64; 16];
        for (j, slot) in vals.iter_mut().enumerate() {
            let s = f
                .next()
                .ok_or_else(|| ParseError::new(i + 1, format!("missing column {}", j + 1)))?;
            *slot = num(i + 1, "counter", s)?;
        }
        if out.len() == n {
            out.push(NetIf::default());
        }
        let e = &mut out[n];
        e.name.clear();
        e.name.push_str(name);
        e.rx = [vals[0], vals[1], vals[2], vals[3]];
        e.tx = [vals[8], vals[9], vals[10], vals[11]];
        n += 1;
    }
    out.truncate(n);
    Ok(())
}

/// cAdvisor's conversion of a v2 `cpu.weight` (1..10000) to v1 shares (2..262144), from the
/// Kubernetes cgroup v2 KEP; out-of-range weights give `None`.
pub fn weight_to_shares(weight: u64) -> Option<u64> {
    if !(1..=10000).contains(&weight) {
        return None;
    }
    Some(2 + ((weight - 1) * 262_142) / 9999)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_cpu_stat_in_nanoseconds() {
        let mut c = CpuStat::default();
        cpu_stat_v2(
            "usage_usec 1205917693\nuser_usec 848103883\nsystem_usec 357813810\nnice_usec 0\nnr_periods 40\nnr_throttled 3\nthrottled_usec 12500\n",
            &mut c,
        )
        .expect("parse");
        assert_eq!(
            c,
            CpuStat {
                usage_ns: Some(1_205_917_693_000),
                user_ns: 848_103_883_000,
                system_ns: 357_813_810_000,
                periods: 40,
                throttled_periods: 3,
                throttled_ns: 12_500_000,
            }
        );
    }

    #[test]
    fn v1_cpuacct_and_throttling() {
        let mut c = CpuStat::default();
        cpuacct_stat("user 85968\nsystem 36270\n", 100, &mut c).expect("parse");
        cpu_stat_v1(
            "nr_periods 7\nnr_throttled 2\nthrottled_time 123456789\nnr_bursts 0\nburst_time 0\n",
            &mut c,
        )
        .expect("parse");
        assert_eq!(c.user_ns, 859_680_000_000);
        assert_eq!(c.system_ns, 362_700_000_000);
        assert_eq!(
            (c.periods, c.throttled_periods, c.throttled_ns),
            (7, 2, 123_456_789)
        );
        assert_eq!(
            flat_keyed("user\n", |_, _| {}),
            Err(ParseError::new(1, "expected \"key value\""))
        );
    }

    #[test]
    fn limits_and_single_values() {
        assert_eq!(cpu_max("max 100000\n"), Ok((None, 100000)));
        assert_eq!(cpu_max("50000 100000\n"), Ok((Some(50000), 100000)));
        assert!(cpu_max("50000\n").is_err());
        assert_eq!(single("max\n"), Ok(u64::MAX));
        assert_eq!(single("4096\n"), Ok(4096));
        assert_eq!(signed("-1\n"), Ok(None));
        assert_eq!(signed("20000\n"), Ok(Some(20000)));
        assert_eq!(weight_to_shares(100), Some(2597));
        assert_eq!(weight_to_shares(1), Some(2));
        assert_eq!(weight_to_shares(10000), Some(262_144));
        assert_eq!(weight_to_shares(0), None);
    }

    #[test]
    fn memory_stat_both_versions() {
        let mut m = MemStat::default();
        memory_stat_v1(
            "cache 11264000\nrss 11726848\npgfault 100950\npgmajfault 1\ntotal_cache 5390475264\ntotal_rss 104165376\ntotal_mapped_file 98922496\ntotal_swap 7\ntotal_pgfault 48189664\ntotal_pgmajfault 44910\ntotal_inactive_file 2772750336\n",
            &mut m,
        )
        .expect("v1");
        assert_eq!(
            m,
            MemStat {
                cache: 5390475264,
                rss: 104165376,
                swap: 7,
                mapped_file: 98922496,
                inactive_file: Some(2772750336),
                pgfault: 100950,
                pgmajfault: 1,
                total_pgfault: 48189664,
                total_pgmajfault: 44910,
            }
        );
        memory_stat_v2(
            "anon 1000\nfile 2000\nfile_mapped 300\ninactive_file 1500\npgfault 42\npgmajfault 4\n",
            &mut m,
        )
        .expect("v2");
        assert_eq!(
            (m.rss, m.cache, m.mapped_file, m.inactive_file, m.swap),
            (1000, 2000, 300, Some(1500), 0)
        );
        assert_eq!((m.pgfault, m.total_pgfault, m.pgmajfault), (42, 42, 4));
        assert_eq!(working_set(5000, Some(1500)), 3500);
        assert_eq!(working_set(1000, Some(1500)), 0);
        assert_eq!(working_set(1000, None), 1000);
    }

    #[test]
    fn pressure_totals() {
        assert_eq!(
            pressure(
                "some avg10=32.92 avg60=38.97 avg300=30.70 total=284615024\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=17\n"
            ),
            Ok((284615024, Some(17)))
        );
        assert_eq!(
            pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n"),
            Ok((5, None))
        );
        assert!(pressure("some avg10=0.00\n").is_err());
        assert!(pressure("").is_err());
    }

    #[test]
    fn block_io_both_versions() {
        let mut v = Vec::new();
        io_stat(
            "253:0 rbytes=1048576 wbytes=4096 rios=10 wios=1 dbytes=0 dios=0\n8:0 rbytes=7 wbytes=9 rios=1 wios=1 dbytes=0 dios=0\n",
            &mut v,
        )
        .expect("io.stat");
        assert_eq!(
            v,
            vec![
                DevIo {
                    major: 253,
                    minor: 0,
                    read: 1048576,
                    write: 4096
                },
                DevIo {
                    major: 8,
                    minor: 0,
                    read: 7,
                    write: 9
                }
            ]
        );
        blkio_service_bytes(
            "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Discard 0\n8:0 Total 12288\nTotal 12288\n",
            &mut v,
        )
        .expect("blkio");
        assert_eq!(
            v,
            vec![DevIo {
                major: 8,
                minor: 0,
                read: 4096,
                write: 8192
            }]
        );
        blkio_service_bytes("Total 0\n", &mut v).expect("empty");
        assert!(v.is_empty());
        assert!(io_stat("x rbytes=1\n", &mut v).is_err());
    }

    #[test]
    fn net_dev_skips_ignored_interfaces() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n  eth0: 2000 20 1 2 0 0 0 0 3000 30 3 4 0 0 0 0\n";
        let mut v = vec![NetIf {
            name: "stale".into(),
            ..NetIf::default()
        }];
        net_dev(text, &mut v).expect("parse");
        assert_eq!(
            v,
            vec![NetIf {
                name: "eth0".into(),
                rx: [2000, 20, 1, 2],
                tx: [3000, 30, 3, 4]
            }]
        );
        assert_eq!(count_lines("1\n22\n\n"), 2);
        assert_eq!(first_pid("17\n18\n"), Some(17));
        assert_eq!(first_pid(""), None);
    }
}
