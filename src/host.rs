//! [`HostRoot`]: the only code that builds host paths (`/proc`, `/sys`, the root filesystem).
//!
//! Every collector reads through a `HostRoot`, so the daemon can run in a container with the
//! host's trees mounted elsewhere (`--path.procfs=/host/proc`) and tests can point it at a
//! recorded fixture tree. Reads follow the "missing is normal" rule: a file that does not exist
//! (or a process that vanished) is `Ok(false)` / `Ok(None)`, never an error.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// An I/O failure on a host path that is not "missing".
#[derive(Debug, thiserror::Error)]
#[error("reading {path}")]
pub struct HostError {
    /// The path that failed.
    pub path: PathBuf,
    /// The underlying I/O error.
    #[source]
    pub source: io::Error,
}

/// Where the host's `/proc`, `/sys` and root filesystem are mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoot {
    proc: PathBuf,
    sys: PathBuf,
    rootfs: PathBuf,
}

impl Default for HostRoot {
    fn default() -> Self {
        Self::new("/proc", "/sys", "/")
    }
}

/// True when an I/O error means "the thing is not there (any more)": a missing file, a process
/// that exited between listing and reading (`ESRCH`), or a device that went away (`ENODEV`,
/// `ENXIO`).
pub fn is_missing(err: &io::Error) -> bool {
    if err.kind() == io::ErrorKind::NotFound {
        return true;
    }
    matches!(
        err.raw_os_error(),
        Some(code) if code == rustix::io::Errno::SRCH.raw_os_error()
            || code == rustix::io::Errno::NODEV.raw_os_error()
            || code == rustix::io::Errno::NXIO.raw_os_error()
    )
}

impl HostRoot {
    /// A host root from the three mount points.
    pub fn new(
        proc: impl Into<PathBuf>,
        sys: impl Into<PathBuf>,
        rootfs: impl Into<PathBuf>,
    ) -> Self {
        Self {
            proc: proc.into(),
            sys: sys.into(),
            rootfs: rootfs.into(),
        }
    }

    /// The procfs mount point.
    pub fn proc_root(&self) -> &Path {
        &self.proc
    }

    /// The sysfs mount point.
    pub fn sys_root(&self) -> &Path {
        &self.sys
    }

    /// The host's root filesystem.
    pub fn rootfs_root(&self) -> &Path {
        &self.rootfs
    }

    /// `<procfs>/<rel>`; `rel` is relative (`"net/dev"`, `"self/mountinfo"`).
    pub fn proc(&self, rel: &str) -> PathBuf {
        self.proc.join(rel.trim_start_matches('/'))
    }

    /// `<sysfs>/<rel>`; `rel` is relative (`"class/net"`).
    pub fn sys(&self, rel: &str) -> PathBuf {
        self.sys.join(rel.trim_start_matches('/'))
    }

    /// A path of the host's root filesystem (`"/etc/os-release"`), under the configured rootfs.
    pub fn rootfs(&self, abs: &str) -> PathBuf {
        self.rootfs.join(abs.trim_start_matches('/'))
    }

    /// Maps a mount point as the host sees it (from mountinfo) to where it can be reached from
    /// here, under the configured rootfs.
    pub fn rootfs_mount_point(&self, host_path: &str) -> PathBuf {
        self.rootfs(host_path)
    }

    /// Strips the rootfs prefix from a path seen from here, giving the host's view (node_exporter
    /// reports mount points as the host sees them).
    pub fn host_view(&self, path: &str) -> String {
        let root = self.rootfs.to_string_lossy();
        if root == "/" {
            return path.to_string();
        }
        match path.strip_prefix(root.trim_end_matches('/')) {
            Some("") => "/".to_string(),
            Some(rest) if rest.starts_with('/') => rest.to_string(),
            _ => path.to_string(),
        }
    }
}

/// A path in sonde's *own* `/proc` (`"self/stat"`) (for its `process_*` metrics). This is deliberately not
/// under the configured procfs: in a container that mounts the host's `/proc` elsewhere, sonde's
/// own process is still described by the `/proc` of its own namespace.
pub fn own_proc(rel: &str) -> PathBuf {
    Path::new("/proc").join(rel.trim_start_matches('/'))
}

/// The most read from one host file (a larger one is truncated): far above any procfs or
/// sysfs file sonde reads (`/proc/net/*` of a busy router stays in the megabytes).
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Reads a whole file into `buf` (cleared first), reusing its allocation.
///
/// Returns `Ok(false)` when the file is missing (see [`is_missing`]).
pub fn read_into(path: &Path, buf: &mut String) -> Result<bool, HostError> {
    buf.clear();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if is_missing(&e) => return Ok(false),
        Err(e) => {
            return Err(HostError {
                path: path.to_path_buf(),
                source: e,
            });
        }
    };
    // Through `Take`, not `File::read_to_string`: the latter first stats the file for a size
    // hint, a wasted system call for procfs/sysfs files (which report size 0 or 4096), and
    // the limit bounds what a host file can make sonde hold.
    match (&file).take(MAX_FILE_BYTES).read_to_string(buf) {
        Ok(_) => Ok(true),
        Err(e) if is_missing(&e) => Ok(false),
        Err(e) => Err(HostError {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// Reads a whole file, `Ok(None)` when it is missing.
pub fn read_opt(path: &Path) -> Result<Option<String>, HostError> {
    let mut buf = String::new();
    Ok(read_into(path, &mut buf)?.then_some(buf))
}

/// Reads a small sysfs attribute and trims the trailing newline. Missing → `Ok(None)`.
/// Other errors (for example `EINVAL` from `speed` of a virtual interface) are returned so the
/// caller can decide; most callers treat them as "attribute not available".
pub fn read_attr(path: &Path, buf: &mut String) -> Result<Option<()>, HostError> {
    if !read_into(path, buf)? {
        return Ok(None);
    }
    let trimmed = buf.trim_end_matches(['\n', ' ']).len();
    buf.truncate(trimmed);
    Ok(Some(()))
}

/// Lists the entry names of a directory, sorted. A missing directory is an empty list.
pub fn list_dir(path: &Path) -> Result<Vec<String>, HostError> {
    let rd = match std::fs::read_dir(path) {
        Ok(rd) => rd,
        Err(e) if is_missing(&e) => return Ok(Vec::new()),
        Err(e) => {
            return Err(HostError {
                path: path.to_path_buf(),
                source: e,
            });
        }
    };
    let mut names = Vec::new();
    for entry in rd {
        match entry {
            Ok(entry) => names.push(entry.file_name().to_string_lossy().into_owned()),
            Err(e) if is_missing(&e) => continue,
            Err(e) => {
                return Err(HostError {
                    path: path.to_path_buf(),
                    source: e,
                });
            }
        }
    }
    names.sort_unstable();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_joined_under_the_roots() {
        let h = HostRoot::new("/host/proc", "/host/sys", "/host/root");
        assert_eq!(h.proc("net/dev"), PathBuf::from("/host/proc/net/dev"));
        assert_eq!(h.proc("/stat"), PathBuf::from("/host/proc/stat"));
        assert_eq!(h.sys("class/net"), PathBuf::from("/host/sys/class/net"));
        assert_eq!(
            h.rootfs("/etc/os-release"),
            PathBuf::from("/host/root/etc/os-release")
        );
        assert_eq!(h.host_view("/host/root/var"), "/var");
        assert_eq!(h.host_view("/host/root"), "/");
        assert_eq!(h.host_view("/elsewhere"), "/elsewhere");
    }

    #[test]
    fn missing_files_are_not_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut buf = String::from("stale");
        assert!(!read_into(&dir.path().join("nope"), &mut buf).expect("missing is ok"));
        assert_eq!(buf, "");
        assert_eq!(
            list_dir(&dir.path().join("nope")).expect("missing dir"),
            Vec::<String>::new()
        );
        std::fs::write(dir.path().join("attr"), "1500\n").expect("write");
        assert_eq!(
            read_attr(&dir.path().join("attr"), &mut buf).expect("read"),
            Some(())
        );
        assert_eq!(buf, "1500");
    }
}
