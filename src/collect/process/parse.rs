//! Pure parsers for the per-process files the `process` collector reads: `/proc/<pid>/stat`,
//! `status`, `io`, `limits`, `smaps_rollup` and `cmdline` (formats in proc(5) and the kernel's
//! Documentation/filesystems/proc.rst, "Process-Specific Subdirectories"). They borrow from the
//! text they are given and never allocate, because they run for every process on every scrape.

use crate::collect::ParseError;

/// `PF_KTHREAD` in the `flags` field of `stat` (include/linux/sched.h): a kernel thread.
const PF_KTHREAD: u64 = 0x0020_0000;

/// The fields of `/proc/<pid>/stat` the collector uses (numbers as in proc(5)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat<'a> {
    /// (2) `comm`: the executable name, at most 15 bytes, between the first `(` and the last `)`.
    pub comm: &'a str,
    /// (3) One-letter state (`R`, `S`, `D`, `Z`, `T`, `I`, ...).
    pub state: u8,
    /// (4) Parent PID.
    pub ppid: i32,
    /// (9) Kernel flags (`PF_*`).
    pub flags: u64,
    /// (10) Minor faults.
    pub minflt: u64,
    /// (12) Major faults.
    pub majflt: u64,
    /// (14) User time in clock ticks.
    pub utime: u64,
    /// (15) System time in clock ticks.
    pub stime: u64,
    /// (20) Number of threads.
    pub num_threads: u64,
    /// (22) Start time after boot, in clock ticks: with the PID, the identity of a process.
    pub starttime: u64,
    /// (23) Virtual memory size in bytes.
    pub vsize: u64,
    /// (24) Resident set size in pages.
    pub rss_pages: u64,
}

impl Stat<'_> {
    /// True for kernel threads (`PF_KTHREAD`).
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
}

fn num(field: Option<&str>, what: &str) -> Result<u64, ParseError> {
    let f = field.ok_or_else(|| ParseError::new(1, format!("missing {what}")))?;
    f.parse()
        .map_err(|_| ParseError::new(1, format!("invalid {what} {f:?}")))
}

/// Parses `/proc/<pid>/stat`. `comm` may contain spaces and parentheses, so the fields are
/// taken after the *last* `)`.
pub fn parse_stat(text: &str) -> Result<Stat<'_>, ParseError> {
    let open = text
        .find('(')
        .ok_or_else(|| ParseError::new(1, "missing '(' before comm"))?;
    let close = text
        .rfind(')')
        .filter(|&c| c > open)
        .ok_or_else(|| ParseError::new(1, "missing ')' after comm"))?;
    let comm = &text[open + 1..close];
    let mut f = text[close + 1..].split_ascii_whitespace();
    // f yields fields 3, 4, 5, ...; nth(k) skips k fields.
    let state = f
        .next()
        .and_then(|s| s.bytes().next())
        .ok_or_else(|| ParseError::new(1, "missing state"))?;
    let ppid_s = f.next();
    let ppid = ppid_s
        .and_then(|s| s.parse::<i32>().ok())
        .ok_or_else(|| ParseError::new(1, format!("invalid ppid {ppid_s:?}")))?;
    let flags = num(f.nth(4), "flags")?; // 5 pgrp, 6 session, 7 tty_nr, 8 tpgid, 9 flags
    let minflt = num(f.next(), "minflt")?; // 10
    let majflt = num(f.nth(1), "majflt")?; // 11 cminflt, 12 majflt
    let utime = num(f.nth(1), "utime")?; // 13 cmajflt, 14 utime
    let stime = num(f.next(), "stime")?; // 15
    let num_threads = num(f.nth(4), "num_threads")?; // 16-19 cutime cstime priority nice, 20
    let starttime = num(f.nth(1), "starttime")?; // 21 itrealvalue, 22 starttime
    let vsize = num(f.next(), "vsize")?; // 23
    let rss_pages = f
        .next()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| ParseError::new(1, "invalid rss"))?
        .max(0) as u64; // 24
    Ok(Stat {
        comm,
        state,
        ppid,
        flags,
        minflt,
        majflt,
        utime,
        stime,
        num_threads,
        starttime,
        vsize,
        rss_pages,
    })
}

/// The fields of `/proc/<pid>/status` the collector uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Status {
    /// One-letter state from `State:` (0 when absent).
    pub state: u8,
    /// Effective UID (second column of `Uid:`).
    pub euid: u32,
    /// `VmSwap` in bytes (absent for kernel threads and zombies: 0).
    pub vm_swap_bytes: u64,
    /// `voluntary_ctxt_switches`.
    pub voluntary_ctxt_switches: u64,
    /// `nonvoluntary_ctxt_switches`.
    pub nonvoluntary_ctxt_switches: u64,
}

fn kib(value: &str) -> u64 {
    value
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .map_or(0, |k| k * 1024)
}

/// Parses `/proc/<pid>/status` (`Key:\tvalue` lines). Missing keys stay 0.
pub fn parse_status(text: &str) -> Result<Status, ParseError> {
    let mut s = Status::default();
    let mut saw_uid = false;
    for (i, line) in text.lines().enumerate() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let bad = || ParseError::new(i + 1, format!("invalid {key} {value:?}"));
        match key {
            "State" => s.state = value.trim_start().bytes().next().unwrap_or(0),
            "Uid" => {
                s.euid = value
                    .split_ascii_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(bad)?;
                saw_uid = true;
            }
            "VmSwap" => s.vm_swap_bytes = kib(value),
            "voluntary_ctxt_switches" => {
                s.voluntary_ctxt_switches = value.trim().parse().map_err(|_| bad())?
            }
            "nonvoluntary_ctxt_switches" => {
                s.nonvoluntary_ctxt_switches = value.trim().parse().map_err(|_| bad())?
            }
            _ => {}
        }
    }
    if !saw_uid {
        return Err(ParseError::new(0, "missing Uid"));
    }
    Ok(s)
}

/// `read_bytes` and `write_bytes` of `/proc/<pid>/io` (storage-layer bytes, as
/// process-exporter reports; not `rchar`/`wchar`).
pub fn parse_io(text: &str) -> Result<(u64, u64), ParseError> {
    let (mut read, mut write) = (None, None);
    for (i, line) in text.lines().enumerate() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let slot = match key {
            "read_bytes" => &mut read,
            "write_bytes" => &mut write,
            _ => continue,
        };
        *slot = Some(
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| ParseError::new(i + 1, format!("invalid {key} {value:?}")))?,
        );
    }
    match (read, write) {
        (Some(r), Some(w)) => Ok((r, w)),
        _ => Err(ParseError::new(0, "missing read_bytes or write_bytes")),
    }
}

/// The soft limit of `Max open files` in `/proc/<pid>/limits` (`unlimited` is `u64::MAX`).
pub fn parse_limits_open_files(text: &str) -> Result<u64, ParseError> {
    for (i, line) in text.lines().enumerate() {
        if let Some(rest) = line.strip_prefix("Max open files") {
            let soft = rest.split_ascii_whitespace().next().unwrap_or_default();
            if soft == "unlimited" {
                return Ok(u64::MAX);
            }
            return soft
                .parse()
                .map_err(|_| ParseError::new(i + 1, format!("invalid soft limit {soft:?}")));
        }
    }
    Err(ParseError::new(0, "missing Max open files"))
}

/// `Pss` and `SwapPss` of `/proc/<pid>/smaps_rollup`, in bytes (0 when absent).
pub fn parse_smaps_rollup(text: &str) -> (u64, u64) {
    let (mut pss, mut swap_pss) = (0, 0);
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("Pss:") {
            pss = kib(v);
        } else if let Some(v) = line.strip_prefix("SwapPss:") {
            swap_pss = kib(v);
        }
    }
    (pss, swap_pss)
}

/// `/proc/<pid>/schedstat` (Documentation/scheduler/sched-stats.rst): time spent on the CPU in
/// nanoseconds and the number of times the task was scheduled in. Equal values at two moments
/// mean the task did not run in between.
pub fn parse_schedstat(text: &str) -> Option<(u64, u64)> {
    let mut f = text.split_ascii_whitespace();
    let run = f.next()?.parse().ok()?;
    let pcount = f.nth(1)?.parse().ok()?;
    Some((run, pcount))
}

/// The arguments of `/proc/<pid>/cmdline` (NUL-separated, trailing NULs dropped; empty for
/// kernel threads and zombies), as process-exporter's procfs library splits them.
pub fn cmdline_args(raw: &str) -> impl Iterator<Item = &str> + '_ {
    let trimmed = raw.trim_end_matches('\0');
    trimmed
        .split('\0')
        .take(if trimmed.is_empty() { 0 } else { usize::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fx {
        ($rel:literal) => {
            include_str!(concat!("../../../tests/fixtures/process/proc/", $rel))
        };
    }

    #[test]
    fn stat_of_a_comm_with_spaces_and_parens() {
        let s = parse_stat(
            "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 3 0 7 9 0 0 20 0 2 0 12345 1000 -1 0",
        )
        .expect("parse");
        assert_eq!(s.comm, "a (b) c");
        assert_eq!(s.state, b'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.flags, 4194560);
        assert_eq!((s.minflt, s.majflt, s.utime, s.stime), (100, 3, 7, 9));
        assert_eq!((s.num_threads, s.starttime, s.vsize), (2, 12345, 1000));
        assert_eq!(s.rss_pages, 0, "negative rss clamps to 0");
        assert!(!s.is_kernel_thread());
    }

    #[test]
    fn truncated_stat_is_an_error() {
        assert_eq!(
            parse_stat("1 (x) S 0 1 1 0 -1 4194560 10"),
            Err(ParseError::new(1, "missing majflt"))
        );
        assert_eq!(
            parse_stat("1 x S"),
            Err(ParseError::new(1, "missing '(' before comm"))
        );
    }

    #[test]
    fn recorded_kernel_thread() {
        let text = fx!("2/stat");
        let s = parse_stat(text).expect("parse");
        assert_eq!(s.comm, "kthreadd");
        assert!(s.is_kernel_thread());
        assert_eq!((s.ppid, s.num_threads, s.vsize, s.rss_pages), (0, 1, 0, 0));
        let st = parse_status(fx!("2/status")).expect("status");
        assert_eq!(st.vm_swap_bytes, 0);
        assert_eq!(st.euid, 0);
        assert_eq!(cmdline_args(fx!("2/cmdline")).count(), 0);
    }

    #[test]
    fn recorded_process_files() {
        let s = parse_stat(fx!("25141/stat")).expect("stat");
        assert_eq!(s.comm, "sleep");
        assert_eq!(s.state, b'S');
        assert_eq!(s.ppid, 25138);
        assert_eq!((s.utime, s.stime, s.minflt, s.majflt), (0, 0, 117, 0));
        assert_eq!(s.num_threads, 1);
        assert_eq!(s.starttime, 356473);
        assert_eq!((s.vsize, s.rss_pages), (2990080, 425));
        let st = parse_status(fx!("25141/status")).expect("status");
        assert_eq!(
            st,
            Status {
                state: b'S',
                euid: 1000,
                vm_swap_bytes: 0,
                voluntary_ctxt_switches: 1,
                nonvoluntary_ctxt_switches: 1,
            }
        );
        assert_eq!(parse_io(fx!("25141/io")), Ok((0, 0)));
        assert_eq!(parse_limits_open_files(fx!("25141/limits")), Ok(20000));
        assert_eq!(
            parse_smaps_rollup(fx!("25141/smaps_rollup")),
            (226 * 1024, 0)
        );
        let args: Vec<&str> = cmdline_args(fx!("25142/cmdline")).collect();
        assert_eq!(args, ["/usr/local/bin/worker", "1001"]);
        let p1 = parse_stat(fx!("1/stat")).expect("stat");
        assert_eq!(
            (p1.comm, p1.num_threads, p1.utime, p1.stime),
            ("process_api", 13, 239, 909)
        );
        assert_eq!((p1.minflt, p1.majflt, p1.rss_pages), (98991, 0, 4117));
        assert_eq!(parse_limits_open_files(fx!("1/limits")), Ok(32768));
    }

    #[test]
    fn recorded_zombie() {
        let s = parse_stat(fx!("26219/stat")).expect("stat");
        assert_eq!(s.state, b'Z');
        assert_eq!(s.comm, "python3");
        assert_eq!((s.vsize, s.rss_pages, s.num_threads), (0, 0, 1));
        let st = parse_status(fx!("26219/status")).expect("status");
        assert_eq!(st.state, b'Z');
        assert_eq!(st.vm_swap_bytes, 0);
        assert_eq!(cmdline_args(fx!("26219/cmdline")).count(), 0);
    }

    #[test]
    fn io_limits_and_status_errors() {
        assert_eq!(
            parse_io("rchar: 1\n"),
            Err(ParseError::new(0, "missing read_bytes or write_bytes"))
        );
        assert_eq!(
            parse_io("read_bytes: x\nwrite_bytes: 1\n"),
            Err(ParseError::new(1, "invalid read_bytes \" x\""))
        );
        assert_eq!(
            parse_limits_open_files(
                "Max open files            unlimited            unlimited            files\n"
            ),
            Ok(u64::MAX)
        );
        assert_eq!(
            parse_limits_open_files("Limit\n"),
            Err(ParseError::new(0, "missing Max open files"))
        );
        assert_eq!(
            parse_status("Name:\tx\n"),
            Err(ParseError::new(0, "missing Uid"))
        );
    }

    #[test]
    fn schedstat() {
        assert_eq!(
            parse_schedstat(fx!("25141/schedstat")),
            Some((1_010_026, 1))
        );
        assert_eq!(parse_schedstat("1 2"), None);
    }

    #[test]
    fn cmdline_splitting() {
        assert_eq!(cmdline_args("").count(), 0);
        assert_eq!(cmdline_args("\0").count(), 0);
        let v: Vec<&str> = cmdline_args("a\0\0b\0").collect();
        assert_eq!(v, ["a", "", "b"]);
        let v: Vec<&str> = cmdline_args("sshd: user@pts/0").collect();
        assert_eq!(v, ["sshd: user@pts/0"]);
    }
}
