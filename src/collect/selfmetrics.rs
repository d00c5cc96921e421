//! sonde's own `process_*` metrics (the set Prometheus client libraries expose): CPU time,
//! memory, file descriptors and start time of the sonde process, read from `/proc/self`.

use crate::host::{own_proc, read_into};

use super::{MetricType, Sink};

/// Reads and writes the `process_*` families; keeps its buffers and the values that never
/// change (start time, limits) between scrapes.
#[derive(Debug)]
pub struct SelfMetrics {
    buf: String,
    ticks: f64,
    page_size: f64,
    start_time: Option<f64>,
    max_fds: Option<f64>,
    max_vm: Option<f64>,
}

impl Default for SelfMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Fields of `/proc/self/stat` used here (see proc(5)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SelfStat {
    /// utime + stime in clock ticks.
    pub cpu_ticks: u64,
    /// starttime in clock ticks after boot.
    pub start_ticks: u64,
    /// vsize in bytes.
    pub vsize: u64,
    /// rss in pages.
    pub rss_pages: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) may contain spaces and parentheses,
/// so fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<SelfStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    // rest[0] is field 3 (state); field N is at index N - 3.
    let get = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(SelfStat {
        cpu_ticks: get(14)? + get(15)?,
        start_ticks: get(22)?,
        vsize: get(23)?,
        rss_pages: get(24)?,
    })
}

/// Reads the soft limit of a line of `/proc/<pid>/limits` ("Max open files  1024  4096  files").
pub fn parse_limit(text: &str, name: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let soft = line[name.len()..].split_ascii_whitespace().next()?;
    if soft == "unlimited" {
        Some(f64::INFINITY)
    } else {
        soft.parse().ok()
    }
}

impl SelfMetrics {
    /// A reader for the current process.
    pub fn new() -> Self {
        Self {
            buf: String::with_capacity(2048),
            ticks: rustix::param::clock_ticks_per_second() as f64,
            page_size: rustix::param::page_size() as f64,
            start_time: None,
            max_fds: None,
            max_vm: None,
        }
    }

    fn boot_time(&mut self) -> Option<f64> {
        read_into(&own_proc("stat"), &mut self.buf).ok()?;
        self.buf
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Writes the `process_*` families. Missing files just leave families out.
    pub fn write(&mut self, sink: &mut Sink) {
        if self.max_fds.is_none()
            && read_into(&own_proc("self/limits"), &mut self.buf).unwrap_or(false)
        {
            self.max_fds = parse_limit(&self.buf, "Max open files");
            self.max_vm = parse_limit(&self.buf, "Max address space");
        }
        let stat = read_into(&own_proc("self/stat"), &mut self.buf)
            .unwrap_or(false)
            .then(|| parse_stat(&self.buf))
            .flatten();
        {
            if let Some(st) = stat {
                if self.start_time.is_none() {
                    self.start_time = self
                        .boot_time()
                        .map(|b| b + st.start_ticks as f64 / self.ticks);
                }
                sink.single(
                    "process_cpu_seconds_total",
                    "Total user and system CPU time spent in seconds.",
                    MetricType::Counter,
                    st.cpu_ticks as f64 / self.ticks,
                );
                sink.gauge(
                    "process_virtual_memory_bytes",
                    "Virtual memory size in bytes.",
                    st.vsize as f64,
                );
                sink.gauge(
                    "process_resident_memory_bytes",
                    "Resident memory size in bytes.",
                    st.rss_pages as f64 * self.page_size,
                );
            }
        }
        if let Some(n) = open_fds() {
            sink.gauge(
                "process_open_fds",
                "Number of open file descriptors.",
                n as f64,
            );
        }
        if let Some(v) = self.max_fds {
            sink.gauge(
                "process_max_fds",
                "Maximum number of open file descriptors.",
                v,
            );
        }
        if let Some(v) = self.max_vm {
            sink.gauge(
                "process_virtual_memory_max_bytes",
                "Maximum amount of virtual memory available in bytes.",
                if v.is_infinite() { u64::MAX as f64 } else { v },
            );
        }
        if let Some(v) = self.start_time {
            sink.gauge(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                v,
            );
        }
    }
}

/// The number of open file descriptors: Linux >= 6.2 reports it as the size of `/proc/self/fd`
/// (one stat instead of listing thousands of entries when the collectors keep files open);
/// older kernels report 0 there, and the directory is counted instead.
fn open_fds() -> Option<u64> {
    let dir = own_proc("self/fd");
    match std::fs::metadata(&dir) {
        Ok(m) if m.len() > 0 => Some(m.len()),
        _ => std::fs::read_dir(&dir).ok().map(|d| d.count() as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parens_in_comm() {
        let text = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 500 0 0 0 150 50 0 0 20 0 3 0 12345 10485760 1200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        assert_eq!(
            parse_stat(text),
            Some(SelfStat {
                cpu_ticks: 200,
                start_ticks: 12345,
                vsize: 10485760,
                rss_pages: 1200
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn limits() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max address space         unlimited            unlimited            bytes     \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(parse_limit(text, "Max open files"), Some(1024.0));
        assert_eq!(parse_limit(text, "Max address space"), Some(f64::INFINITY));
        assert_eq!(parse_limit(text, "Max processes"), None);
    }
}
