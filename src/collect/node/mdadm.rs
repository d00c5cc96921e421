//! `mdadm` collector: `node_md_*` (state, disks by role, required disks, blocks, blocks synced)
//! from `/proc/mdstat` (format: drivers/md/md.c `md_seq_show`; see also
//! <https://raid.wiki.kernel.org/index.php/Mdstat>).
//!
//! The parser follows node_exporter 1.5 (procfs `MDStat`) deliberately, including its quirks:
//! the state comes from the third word of the device line unless the line after the status
//! line (or after the bitmap line) mentions a recovery, resync or check; raid0/linear arrays
//! count every `name[n]` member as active and required; inactive arrays report 0 disks.

use std::path::PathBuf;

use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, MetricType, ParseError, Sink};
use crate::host::{HostRoot, read_into};

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Mdadm {
            path: host.proc("mdstat"),
            buf: String::with_capacity(2048),
        })
    }
}

struct Mdadm {
    path: PathBuf,
    buf: String,
}

/// The activity state of an array, as node_exporter labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MdState {
    /// `active` on the device line, no sync in progress.
    Active,
    /// `inactive` on the device line.
    Inactive,
    /// A `recovery` line (rebuilding onto a replacement disk).
    Recovering,
    /// A `resync` line.
    Resync,
    /// A `check` line (scrub).
    Check,
    /// Any other word on the device line: every `node_md_state` series is 0.
    Other,
}

/// `(label value, state)` in node_exporter's order.
const STATES: [(&str, MdState); 5] = [
    ("active", MdState::Active),
    ("inactive", MdState::Inactive),
    ("recovering", MdState::Recovering),
    ("resync", MdState::Resync),
    ("check", MdState::Check),
];

/// One array from `/proc/mdstat`.
#[derive(Debug, Clone, PartialEq)]
pub struct MdArray<'a> {
    /// Device name (`md0`).
    pub name: &'a str,
    /// Activity state.
    pub state: MdState,
    /// Active member disks.
    pub disks_active: u64,
    /// Members marked `(F)`.
    pub disks_failed: u64,
    /// Members marked `(S)`.
    pub disks_spare: u64,
    /// Disks the array requires (`[n/m]`'s n).
    pub disks_required: u64,
    /// Size in 1 KiB blocks.
    pub blocks: u64,
    /// Blocks in sync (equal to `blocks` when no sync runs; 0 when it is pending/delayed).
    pub blocks_synced: u64,
}

fn int(s: &str, line: usize, what: &str) -> Result<u64, ParseError> {
    s.parse()
        .map_err(|_| ParseError::new(line, format!("invalid {what} {s:?}")))
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Parses `[total/active] [UU_]` at the start of `s`.
fn disk_counts(s: &str) -> Option<(&str, &str)> {
    let rest = s.strip_prefix('[')?;
    let (total, rest) = rest.split_once('/')?;
    let (active, rest) = rest.split_once(']')?;
    let rest = rest.strip_prefix(" [")?;
    let end = rest.find(|c| c != 'U' && c != '_')?;
    if end == 0 || !rest[end..].starts_with(']') || !all_digits(total) || !all_digits(active) {
        return None;
    }
    Some((total, active))
}

/// `(active, required, blocks)` from the device line and the status line below it.
fn status(device: &str, status: &str, line: usize) -> Result<(u64, u64, u64), ParseError> {
    let first = status
        .split_ascii_whitespace()
        .next()
        .ok_or_else(|| ParseError::new(line, "empty status line"))?;
    let blocks = int(first, line, "block count")?;
    if device.contains("raid0") || device.contains("linear") {
        // Only member disks carry a `[n]` on the device line.
        let n = device.matches('[').count() as u64;
        return Ok((n, n, blocks));
    }
    if device.contains("inactive") {
        return Ok((0, 0, blocks));
    }
    // The disk counts are the last `[n/m] [U_]` after a `<digits> blocks `.
    let counts = status
        .find(" blocks ")
        .filter(|&at| at > 0 && status.as_bytes()[at - 1].is_ascii_digit())
        .and_then(|at| {
            let tail = &status[at + " blocks ".len()..];
            tail.rmatch_indices('[')
                .find_map(|(i, _)| disk_counts(&tail[i..]))
        })
        .ok_or_else(|| ParseError::new(line, format!("no disk counts in {status:?}")))?;
    let required = int(counts.0, line, "required disk count")?;
    let active = int(counts.1, line, "active disk count")?;
    Ok((active, required, blocks))
}

/// The synced block count from a sync line; also checks, like node_exporter, that the
/// percentage, finish time and speed are present and numeric.
fn synced_blocks(sync: &str, line: usize) -> Result<u64, ParseError> {
    let bad = || ParseError::new(line, format!("unexpected sync line {sync:?}"));
    let done = sync
        .match_indices('(')
        .find_map(|(i, _)| {
            let (done, rest) = sync[i + 1..].split_once('/')?;
            let (total, _) = rest.split_once(')')?;
            (all_digits(done) && all_digits(total)).then_some(done)
        })
        .ok_or_else(bad)?;
    let done = int(done, line, "synced block count")?;
    // `= <pct>%`, `finish=<min>min`, `speed=<n><Unit>`: each capture runs to the last marker.
    let capture = |start: &str, end: fn(&str) -> Option<usize>| -> Option<f64> {
        let at = sync.find(start)? + start.len();
        let rest = &sync[at..];
        let stop = end(rest).filter(|&e| e > 0)?;
        rest[..stop].trim().parse::<f64>().ok()
    };
    capture("= ", |r| r.rfind('%')).ok_or_else(bad)?;
    capture("finish=", |r| r.rfind("min")).ok_or_else(bad)?;
    capture("speed=", |r| r.rfind(|c: char| c.is_ascii_uppercase())).ok_or_else(bad)?;
    Ok(done)
}

/// Parses `/proc/mdstat` into its arrays, in file order.
pub fn parse(text: &str) -> Result<Vec<MdArray<'_>>, ParseError> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = Vec::new();
    for (i, &line) in lines.iter().enumerate() {
        if line.trim().is_empty()
            || line.starts_with(' ')
            || line.starts_with("Personalities")
            || line.starts_with("unused")
        {
            continue;
        }
        let n = i + 1;
        let mut fields = line.split_ascii_whitespace();
        let (Some(name), Some(_), Some(word)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(ParseError::new(n, "device line has fewer than 3 fields"));
        };
        if lines.len() <= i + 3 {
            return Err(ParseError::new(n, format!("too few lines for {name}")));
        }
        let (disks_active, disks_required, blocks) = status(line, lines[i + 1], n + 1)?;
        let mut state = match word {
            "active" => MdState::Active,
            "inactive" => MdState::Inactive,
            _ => MdState::Other,
        };
        let sync_idx = if lines[i + 2].contains("bitmap") {
            i + 3
        } else {
            i + 2
        };
        let sync = lines[sync_idx];
        let mut blocks_synced = blocks;
        let (recovering, resyncing, checking) = (
            sync.contains("recovery"),
            sync.contains("resync"),
            sync.contains("check"),
        );
        if recovering || resyncing || checking {
            state = if recovering {
                MdState::Recovering
            } else if checking {
                MdState::Check
            } else {
                MdState::Resync
            };
            blocks_synced = if sync.contains("PENDING") || sync.contains("DELAYED") {
                0
            } else {
                synced_blocks(sync, sync_idx + 1)?
            };
        }
        out.push(MdArray {
            name,
            state,
            disks_active,
            disks_failed: line.matches("(F)").count() as u64,
            disks_spare: line.matches("(S)").count() as u64,
            disks_required,
            blocks,
            blocks_synced,
        });
    }
    Ok(out)
}

impl Collector for Mdadm {
    fn name(&self) -> &'static str {
        "mdadm"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        if !read_into(&self.path, &mut self.buf)? {
            return Ok(());
        }
        let arrays = parse(&self.buf).map_err(|e| CollectError::parse(&self.path, e))?;
        if arrays.is_empty() {
            return Ok(());
        }
        let mut f = sink.family(
            "node_md_blocks",
            "Total number of blocks on device.",
            MetricType::Gauge,
        );
        for a in &arrays {
            f.sample(&[("device", a.name)], a.blocks as f64);
        }
        let mut f = sink.family(
            "node_md_blocks_synced",
            "Number of blocks synced on device.",
            MetricType::Gauge,
        );
        for a in &arrays {
            f.sample(&[("device", a.name)], a.blocks_synced as f64);
        }
        let mut f = sink.family(
            "node_md_disks",
            "Number of active/failed/spare disks of device.",
            MetricType::Gauge,
        );
        for a in &arrays {
            f.sample(
                &[("device", a.name), ("state", "active")],
                a.disks_active as f64,
            )
            .sample(
                &[("device", a.name), ("state", "failed")],
                a.disks_failed as f64,
            )
            .sample(
                &[("device", a.name), ("state", "spare")],
                a.disks_spare as f64,
            );
        }
        let mut f = sink.family(
            "node_md_disks_required",
            "Total number of disks of device.",
            MetricType::Gauge,
        );
        for a in &arrays {
            f.sample(&[("device", a.name)], a.disks_required as f64);
        }
        let mut f = sink.family(
            "node_md_state",
            "Indicates the state of md-device.",
            MetricType::Gauge,
        );
        for a in &arrays {
            for (label, state) in STATES {
                let v = if a.state == state { 1.0 } else { 0.0 };
                f.sample(&[("device", a.name), ("state", label)], v);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{self, collect_file, family_sizes};

    fn array(
        name: &str,
        state: MdState,
        disks: [u64; 4],
        blocks: u64,
        blocks_synced: u64,
    ) -> MdArray<'_> {
        MdArray {
            name,
            state,
            disks_active: disks[0],
            disks_failed: disks[1],
            disks_spare: disks[2],
            disks_required: disks[3],
            blocks,
            blocks_synced,
        }
    }

    #[test]
    fn recorded_rhel8_mdstat() {
        let got = parse(include_str!(
            "../../../tests/fixtures/hosts/legacy/proc/mdstat"
        ))
        .expect("legacy");
        assert_eq!(
            got,
            vec![
                array("md3", MdState::Check, [6, 0, 0, 6], 7813525504, 923875328),
                array(
                    "md2",
                    MdState::Recovering,
                    [3, 1, 0, 4],
                    5860147200,
                    60577280
                ),
                array("md1", MdState::Resync, [2, 0, 0, 2], 976630464, 123456789),
                array("md0", MdState::Active, [2, 0, 0, 2], 1953260544, 1953260544),
                array(
                    "md127",
                    MdState::Inactive,
                    [0, 0, 1, 0],
                    976631512,
                    976631512
                ),
            ]
        );
    }

    #[test]
    fn pending_resync_has_zero_synced_blocks() {
        let text = "Personalities : [raid1]\nmd9 : active (auto-read-only) raid1 sdb[1] sda[0]\n      1000 blocks super 1.2 [2/2] [UU]\n      \tresync=PENDING\n\nunused devices: <none>\n";
        assert_eq!(
            parse(text),
            Ok(vec![array("md9", MdState::Resync, [2, 0, 0, 2], 1000, 0)])
        );
    }

    #[test]
    fn garbled_files_are_errors() {
        assert_eq!(
            parse("md0 : active raid1 sda[0]\n      x blocks\n\n\n"),
            Err(ParseError::new(2, "invalid block count \"x\""))
        );
        assert_eq!(
            parse("md0 : active raid1 sda[0]\n      10 blocks super 1.2\n\n\n"),
            Err(ParseError::new(
                2,
                "no disk counts in \"      10 blocks super 1.2\""
            ))
        );
        assert_eq!(
            parse("md0 :\n"),
            Err(ParseError::new(1, "device line has fewer than 3 fields"))
        );
        assert_eq!(
            parse("md0 : active raid1 sda[0]\n      10 blocks [1/1] [U]\n"),
            Err(ParseError::new(1, "too few lines for md0"))
        );
        let no_speed = "md0 : active raid1 sda[0]\n      10 blocks [1/1] [U]\n      resync = 1.0% (1/10) finish=1.0min\n\n";
        assert_eq!(
            parse(no_speed),
            Err(ParseError::new(
                3,
                "unexpected sync line \"      resync = 1.0% (1/10) finish=1.0min\""
            ))
        );
    }

    #[test]
    fn collects_every_state_series() {
        let sink = collect_file::<Module>(
            "mdstat",
            include_str!("../../../tests/fixtures/hosts/legacy/proc/mdstat"),
        );
        assert_eq!(
            family_sizes(&sink),
            [
                ("node_md_blocks", 5),
                ("node_md_blocks_synced", 5),
                ("node_md_disks", 15),
                ("node_md_disks_required", 5),
                ("node_md_state", 25),
            ]
        );
    }

    #[test]
    fn missing_file_writes_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
