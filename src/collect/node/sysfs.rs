//! Helpers shared by the sysfs class collectors: reading attributes (one value per file, as
//! described in the kernel's Documentation/filesystems/sysfs.rst: a value and a newline), and
//! refreshing a cached device listing on a timer.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::collect::CollectError;
use crate::host::read_into;

/// An attribute's value as exported: surrounding whitespace removed.
pub fn attribute(raw: &str) -> &str {
    raw.trim()
}

/// Reads one attribute, trimmed, into `out` through the scratch `buf`; `Ok(false)` when the
/// file is missing (then `out` is left as it was).
pub fn read_attribute(
    path: &Path,
    buf: &mut String,
    out: &mut String,
) -> Result<bool, CollectError> {
    if !read_into(path, buf)? {
        return Ok(false);
    }
    out.clear();
    out.push_str(attribute(buf));
    Ok(true)
}

/// Runs `rescan` on `this` when the listing stamped by `scanned` was never made or is `every`
/// old. The stamp is cleared first and set (to the time before the rescan) only on success, so
/// a failed rescan is retried at the next scrape.
pub fn rescan_if_due<T>(
    this: &mut T,
    scanned: impl Fn(&mut T) -> &mut Option<Instant>,
    every: Duration,
    rescan: impl FnOnce(&mut T) -> Result<(), CollectError>,
) -> Result<(), CollectError> {
    let now = Instant::now();
    if scanned(this).is_none_or(|t| now.duration_since(t) >= every) {
        *scanned(this) = None;
        rescan(this)?;
        *scanned(this) = Some(now);
    }
    Ok(())
}

/// Brings a cached listing up to date before a scrape: rescans when `due`, then `read`s the
/// per-scrape values; when `read` finds the listing stale (false: a device went away or was
/// replaced), rescans once more and reads again. False when the listing is still stale.
pub fn read_listed<T>(
    this: &mut T,
    due: bool,
    rescan: impl Fn(&mut T) -> Result<(), CollectError>,
    read: impl Fn(&mut T) -> Result<bool, CollectError>,
) -> Result<bool, CollectError> {
    if due {
        rescan(this)?;
    }
    if read(this)? {
        return Ok(true);
    }
    rescan(this)?;
    read(this)
}
