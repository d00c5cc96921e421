//! Reading sysfs attributes shared by the node collectors: one value per file, as described in
//! the kernel's Documentation/filesystems/sysfs.rst (a value and a newline).

use std::path::Path;

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
