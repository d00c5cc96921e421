//! cgroup hierarchy detection from `mountinfo` (proc(5), "/proc/pid/mountinfo"): v2 unified,
//! v1, or hybrid (v1 controllers plus a `cgroup2` mount, usually `/sys/fs/cgroup/unified`, that
//! may carry few or no controllers). Pure: takes the file's text.
//!
//! v1 mounts name their controllers in the super options (`rw,cpu,cpuacct`, `rw,name=systemd`).
//! The mount's root field (4th) is kept: inside a cgroup namespace it is not `/`, and the cgroup
//! paths cAdvisor reports are relative to the hierarchy's real root.

use crate::collect::ParseError;

/// Which cgroup version(s) the host uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// cgroup v1 controllers only.
    V1,
    /// cgroup v2 only (unified).
    V2,
    /// v1 controllers plus a cgroup2 mount.
    Hybrid,
}

impl Mode {
    /// The label value (`v1`, `v2`, `hybrid`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
            Self::Hybrid => "hybrid",
        }
    }
}

/// One cgroup mount: where the host sees it and which hierarchy path its root is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mount {
    /// The mount point as the host sees it (`/sys/fs/cgroup/memory`).
    pub point: String,
    /// The hierarchy path mounted there (`/` unless in a cgroup namespace).
    pub root: String,
}

/// The cgroup mounts of a host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mounts {
    /// The cgroup2 mount, if any.
    pub unified: Option<Mount>,
    /// v1 `cpu` controller.
    pub cpu: Option<Mount>,
    /// v1 `cpuacct` controller.
    pub cpuacct: Option<Mount>,
    /// v1 `memory` controller.
    pub memory: Option<Mount>,
    /// v1 `blkio` controller.
    pub blkio: Option<Mount>,
    /// v1 `pids` controller.
    pub pids: Option<Mount>,
    /// v1 `name=systemd` named hierarchy.
    pub systemd: Option<Mount>,
}

impl Mounts {
    /// The mode, `None` when no cgroup filesystem is mounted.
    pub fn mode(&self) -> Option<Mode> {
        let v1 = self.cpu.is_some()
            || self.cpuacct.is_some()
            || self.memory.is_some()
            || self.blkio.is_some()
            || self.pids.is_some();
        match (v1, self.unified.is_some()) {
            (true, true) => Some(Mode::Hybrid),
            (true, false) => Some(Mode::V1),
            (false, true) => Some(Mode::V2),
            (false, false) => None,
        }
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses mountinfo into the cgroup mounts. The first mount of a controller wins (a
/// controller can be bind-mounted again elsewhere).
pub fn parse_mountinfo(text: &str) -> Result<Mounts, ParseError> {
    let mut m = Mounts::default();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let (left, right) = line
            .split_once(" - ")
            .ok_or_else(|| ParseError::new(i + 1, "missing \" - \" separator"))?;
        let mut lf = left.split(' ');
        let (Some(_), Some(_), Some(_), Some(root), Some(point)) =
            (lf.next(), lf.next(), lf.next(), lf.next(), lf.next())
        else {
            return Err(ParseError::new(i + 1, "too few fields"));
        };
        let mut rf = right.split(' ');
        let (Some(fstype), Some(_source), Some(opts)) = (rf.next(), rf.next(), rf.next()) else {
            return Err(ParseError::new(i + 1, "too few fields after separator"));
        };
        let mount = || Mount {
            point: unescape(point),
            root: unescape(root),
        };
        match fstype {
            "cgroup2" if m.unified.is_none() => m.unified = Some(mount()),
            "cgroup" => {
                for opt in opts.split(',') {
                    let slot = match opt {
                        "cpu" => &mut m.cpu,
                        "cpuacct" => &mut m.cpuacct,
                        "memory" => &mut m.memory,
                        "blkio" => &mut m.blkio,
                        "pids" => &mut m.pids,
                        "name=systemd" => &mut m.systemd,
                        _ => continue,
                    };
                    if slot.is_none() {
                        *slot = Some(mount());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(point: &str) -> Option<Mount> {
        Some(Mount {
            point: point.into(),
            root: "/".into(),
        })
    }

    #[test]
    fn hybrid_host_with_separate_cpu_and_cpuacct() {
        // Recorded from this machine (kernel 6.18): cpu and cpuacct mounted separately, a
        // cgroup2 mount at /sys/fs/cgroup/unified.
        let text = include_str!("../../../tests/fixtures/cgroup/hybrid/proc/1/mountinfo");
        let m = parse_mountinfo(text).expect("parse");
        assert_eq!(m.mode(), Some(Mode::Hybrid));
        assert_eq!(m.cpu, mount("/sys/fs/cgroup/cpu"));
        assert_eq!(m.cpuacct, mount("/sys/fs/cgroup/cpuacct"));
        assert_eq!(m.memory, mount("/sys/fs/cgroup/memory"));
        assert_eq!(m.systemd, mount("/sys/fs/cgroup/systemd"));
        assert_eq!(m.unified, mount("/sys/fs/cgroup/unified"));
    }

    #[test]
    fn v2_and_v1_and_nothing() {
        let v2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
        let m = parse_mountinfo(v2).expect("v2");
        assert_eq!(m.mode(), Some(Mode::V2));
        assert_eq!(m.unified, mount("/sys/fs/cgroup"));
        let v1 =
            "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n";
        let m = parse_mountinfo(v1).expect("v1");
        assert_eq!(m.mode(), Some(Mode::V1));
        assert_eq!(m.cpu, m.cpuacct);
        assert_eq!(m.cpu, mount("/sys/fs/cgroup/cpu,cpuacct"));
        let ns = "40 31 0:38 /kubepods.slice /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            parse_mountinfo(ns).expect("ns").unified,
            Some(Mount {
                point: "/sys/fs/cgroup".into(),
                root: "/kubepods.slice".into()
            })
        );
        assert_eq!(parse_mountinfo("").expect("empty").mode(), None);
        assert!(parse_mountinfo("garbage\n").is_err());
        assert_eq!(unescape("/a\\040b"), "/a b");
    }
}
