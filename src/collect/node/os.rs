//! `os` collector: `node_os_info` and `node_os_version` from the host's os-release file
//! (os-release(5): `<rootfs>/etc/os-release`, falling back to `<rootfs>/usr/lib/os-release`;
//! shell-style `KEY=value` lines with optional single or double quotes).
//!
//! The file changes only on an OS upgrade, so it is parsed once and re-read only when its
//! modification time (or the file chosen) changes: one `stat` per scrape.

use std::path::PathBuf;
use std::time::SystemTime;

use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, MetricType, ParseError, Sink};
use crate::host::{HostError, HostRoot, is_missing, read_into};

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Os {
            paths: [
                host.rootfs("/etc/os-release"),
                host.rootfs("/usr/lib/os-release"),
            ],
            cached: None,
            buf: String::new(),
        })
    }
}

/// The os-release fields node_exporter reports (empty when absent).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OsRelease {
    /// `NAME`.
    pub name: String,
    /// `ID`.
    pub id: String,
    /// `ID_LIKE`.
    pub id_like: String,
    /// `PRETTY_NAME`.
    pub pretty_name: String,
    /// `VARIANT`.
    pub variant: String,
    /// `VARIANT_ID`.
    pub variant_id: String,
    /// `VERSION`.
    pub version: String,
    /// `VERSION_ID`.
    pub version_id: String,
    /// `VERSION_CODENAME`.
    pub version_codename: String,
    /// `BUILD_ID`.
    pub build_id: String,
    /// `IMAGE_ID`.
    pub image_id: String,
    /// `IMAGE_VERSION`.
    pub image_version: String,
}

impl OsRelease {
    /// The leading `major[.minor]` number of `VERSION_ID` (`"8.8"` → 8.8, `"22.04"` → 22.04,
    /// `"rolling"` → 0), the value of `node_os_version`.
    pub fn numeric_version(&self) -> f64 {
        let v = self.version_id.as_str();
        let int_end = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
        if int_end == 0 {
            return 0.0;
        }
        let mut end = int_end;
        if v[end..].starts_with('.') {
            end += 1;
            end += v[end..]
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(v.len() - end);
        }
        v[..end].parse().unwrap_or(0.0)
    }
}

/// Unquotes one os-release value: single quotes are literal, double quotes honour the
/// backslash escapes `\" \\ \$ \`` (and `\n`, `\t`), an unquoted `#` starts a comment.
fn unquote(raw: &str, line: usize) -> Result<String, ParseError> {
    let mut out = String::with_capacity(raw.len());
    let mut sig = 0; // length of `out` up to the last significant (non-blank) character
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => out.push(c),
                        None => return Err(ParseError::new(line, "unmatched '")),
                    }
                }
                sig = out.len();
            }
            '"' => {
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => out.push(e),
                            Some('n') => out.push('\n'),
                            Some('t') => out.push('\t'),
                            Some(e) => {
                                out.push('\\');
                                out.push(e);
                            }
                            None => return Err(ParseError::new(line, "unmatched \"")),
                        },
                        Some(c) => out.push(c),
                        None => return Err(ParseError::new(line, "unmatched \"")),
                    }
                }
                sig = out.len();
            }
            '#' => {
                out.truncate(sig);
                return Ok(out);
            }
            ' ' | '\t' => out.push(c),
            c => {
                out.push(c);
                sig = out.len();
            }
        }
    }
    Ok(out)
}

/// Parses an os-release file. Blank lines and `#` comments are skipped; a non-blank line
/// without `=` is an error.
pub fn parse(text: &str) -> Result<OsRelease, ParseError> {
    let mut os = OsRelease::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| ParseError::new(i + 1, "missing '='"))?;
        let key = key.trim();
        let key = key.strip_prefix("export ").unwrap_or(key).trim();
        let slot = match key {
            "NAME" => &mut os.name,
            "ID" => &mut os.id,
            "ID_LIKE" => &mut os.id_like,
            "PRETTY_NAME" => &mut os.pretty_name,
            "VARIANT" => &mut os.variant,
            "VARIANT_ID" => &mut os.variant_id,
            "VERSION" => &mut os.version,
            "VERSION_ID" => &mut os.version_id,
            "VERSION_CODENAME" => &mut os.version_codename,
            "BUILD_ID" => &mut os.build_id,
            "IMAGE_ID" => &mut os.image_id,
            "IMAGE_VERSION" => &mut os.image_version,
            "" => return Err(ParseError::new(i + 1, "empty key")),
            _ => continue,
        };
        *slot = unquote(value.trim(), i + 1)?;
    }
    Ok(os)
}

struct Cached {
    which: usize,
    mtime: SystemTime,
    os: OsRelease,
    version: f64,
}

struct Os {
    paths: [PathBuf; 2],
    cached: Option<Cached>,
    buf: String,
}

impl Os {
    /// Brings the cache up to date; `Ok(false)` when neither file exists.
    fn refresh(&mut self) -> Result<bool, CollectError> {
        for (which, path) in self.paths.iter().enumerate() {
            let mtime = match std::fs::metadata(path).and_then(|m| m.modified()) {
                Ok(t) => t,
                Err(e) if is_missing(&e) => continue,
                Err(e) => {
                    return Err(HostError {
                        path: path.clone(),
                        source: e,
                    }
                    .into());
                }
            };
            if self
                .cached
                .as_ref()
                .is_some_and(|c| c.which == which && c.mtime == mtime)
            {
                return Ok(true);
            }
            if !read_into(path, &mut self.buf)? {
                continue;
            }
            let os = parse(&self.buf).map_err(|e| CollectError::parse(path, e))?;
            let version = os.numeric_version();
            self.cached = Some(Cached {
                which,
                mtime,
                os,
                version,
            });
            return Ok(true);
        }
        self.cached = None;
        Ok(false)
    }
}

/// Writes both families for a parsed release.
pub fn write(sink: &mut Sink, os: &OsRelease, version: f64) {
    sink.family(
        "node_os_info",
        "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, \
         image_version, name, pretty_name, variant, variant_id, version, version_codename, \
         version_id.",
        MetricType::Gauge,
    )
    .sample(
        &[
            ("build_id", &os.build_id),
            ("id", &os.id),
            ("id_like", &os.id_like),
            ("image_id", &os.image_id),
            ("image_version", &os.image_version),
            ("name", &os.name),
            ("pretty_name", &os.pretty_name),
            ("variant", &os.variant),
            ("variant_id", &os.variant_id),
            ("version", &os.version),
            ("version_codename", &os.version_codename),
            ("version_id", &os.version_id),
        ],
        1.0,
    );
    if version > 0.0 {
        sink.family(
            "node_os_version",
            "Metric containing the major.minor part of the OS version.",
            MetricType::Gauge,
        )
        .sample(
            &[("id", &os.id), ("id_like", &os.id_like), ("name", &os.name)],
            version,
        );
    }
}

impl Collector for Os {
    fn name(&self) -> &'static str {
        "os"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        if !self.refresh()? {
            return Ok(());
        }
        if let Some(c) = &self.cached {
            write(sink, &c.os, c.version);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{self, all_samples, collect_once, dir_host, scrape};

    #[test]
    fn recorded_files() {
        let legacy = parse(include_str!(
            "../../../tests/fixtures/hosts/legacy/root/usr/lib/os-release"
        ))
        .expect("legacy");
        assert_eq!(
            legacy,
            OsRelease {
                name: "Red Hat Enterprise Linux".into(),
                id: "rhel".into(),
                id_like: "fedora".into(),
                pretty_name: "Red Hat Enterprise Linux 8.8 (Ootpa)".into(),
                version: "8.8 (Ootpa)".into(),
                version_id: "8.8".into(),
                ..OsRelease::default()
            }
        );
        assert_eq!(legacy.numeric_version(), 8.8);
        let modern = parse(include_str!(
            "../../../tests/fixtures/hosts/modern/root/usr/lib/os-release"
        ))
        .expect("modern");
        assert_eq!(modern.pretty_name, "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(modern.version_codename, "bookworm");
        assert_eq!(modern.id, "debian");
        assert_eq!(modern.numeric_version(), 12.0);
    }

    #[test]
    fn quoting_escapes_and_comments() {
        let os = parse(
            "# comment\n\nNAME='single \"q\"'\nID=plain # trailing\n export VARIANT = \"a\\\"b\\\\c\\$d\"\n\
             VERSION_ID=22.04.3-lts\nBUILD_ID=x'y z'\"w\"\n",
        )
        .expect("parse");
        assert_eq!(os.name, "single \"q\"");
        assert_eq!(os.id, "plain");
        assert_eq!(os.variant, "a\"b\\c$d");
        assert_eq!(os.build_id, "xy zw");
        assert_eq!(os.numeric_version(), 22.04);
        assert_eq!(
            parse("NAME=\"open\n"),
            Err(ParseError::new(1, "unmatched \""))
        );
        assert_eq!(
            parse("ID=x\nno separator\n"),
            Err(ParseError::new(2, "missing '='"))
        );
    }

    #[test]
    fn numeric_version_takes_the_leading_major_minor() {
        let v = |s: &str| {
            OsRelease {
                version_id: s.into(),
                ..OsRelease::default()
            }
            .numeric_version()
        };
        assert_eq!(v("12"), 12.0);
        assert_eq!(v("8.10"), 8.1);
        assert_eq!(v("7."), 7.0);
        assert_eq!(v("rolling"), 0.0);
        assert_eq!(v(""), 0.0);
    }

    #[test]
    fn collects_the_legacy_tree_and_falls_back_to_usr_lib() {
        let root = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/hosts/legacy/root"
        );
        let host = HostRoot::new("/nonexistent", "/nonexistent", root);
        let sink = collect_once::<Module>(&Switch::default(), &host);
        assert_eq!(
            all_samples(&sink),
            vec![
                (
                    "node_os_info".to_string(),
                    "build_id=\"\",id=\"rhel\",id_like=\"fedora\",image_id=\"\",image_version=\"\",\
                     name=\"Red Hat Enterprise Linux\",pretty_name=\"Red Hat Enterprise Linux 8.8 (Ootpa)\",\
                     variant=\"\",variant_id=\"\",version=\"8.8 (Ootpa)\",version_codename=\"\",version_id=\"8.8\""
                        .to_string(),
                    1.0
                ),
                (
                    "node_os_version".to_string(),
                    "id=\"rhel\",id_like=\"fedora\",name=\"Red Hat Enterprise Linux\"".to_string(),
                    8.8
                ),
            ]
        );

        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("usr/lib")).expect("mkdir");
        let file = dir.path().join("usr/lib/os-release");
        std::fs::write(&file, "ID=arch\nNAME=Arch\nVERSION_ID=rolling\n").expect("write");
        let host = dir_host(dir.path());
        let mut c = Module::build(&Switch::default(), &host);
        let sink = scrape(c.as_mut());
        let got = all_samples(&sink);
        assert_eq!(
            got.len(),
            1,
            "no version family for a non-numeric VERSION_ID"
        );
        assert!(got[0].1.contains("id=\"arch\""), "{got:?}");

        // A changed file (new mtime) is re-read.
        std::fs::write(&file, "ID=arch2\nNAME=Arch\n").expect("write");
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&file)
            .and_then(|f| f.set_modified(later))
            .expect("touch");
        let sink = scrape(c.as_mut());
        assert!(all_samples(&sink)[0].1.contains("id=\"arch2\""));
    }

    #[test]
    fn missing_files_write_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
