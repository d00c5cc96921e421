//! process-exporter's `process_names` rules: the YAML shape (`name`, `comm`, `exe`, `cmdline`),
//! the matchers (all given selectors must match; the first matching rule wins) and the group name
//! templates (`{{.Comm}}`, `{{.ExeBase}}`, `{{.ExeFull}}`, `{{.Username}}`, `{{.PID}}`,
//! `{{.StartTime}}`, `{{.Matches.X}}`), with process-exporter's exact semantics:
//! - `comm` is an exact match against the 15-byte `comm` of `/proc/<pid>/stat`;
//! - `exe` compares against `argv[0]`: a rule without `/` matches its base name, a rule with `/`
//!   must equal `argv[0]`; a process with no arguments (kernel thread, zombie) never matches;
//! - `cmdline` regexes (unanchored) run against the arguments joined by single spaces; every one
//!   must match; their named captures fill `.Matches`;
//! - `ExeFull` is `argv[0]` and `ExeBase` its base name (Go's `filepath.Base`), both falling back
//!   to `comm` when there are no arguments; the default name is `{{.ExeBase}}`;
//! - a `.Matches` key that no capture defined renders as `<no value>` (Go templates' rendering).

use std::collections::HashMap;

use serde::Deserialize;

use crate::config::Pattern;

/// One entry of `process_names` (process-exporter's `MatcherGroup`).
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Rule {
    /// Name template (default `{{.ExeBase}}`).
    pub name: Option<String>,
    /// `comm` values, any of which matches.
    pub comm: Option<Vec<String>>,
    /// `argv[0]` values (base name, or full path when it contains `/`), any of which matches.
    pub exe: Option<Vec<String>>,
    /// Regexes over the joined command line, all of which must match.
    pub cmdline: Option<Vec<Pattern>>,
}

/// A process-exporter configuration file: only `process_names` is read (other keys are ignored,
/// as process-exporter's own YAML decoding does).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct ExporterFile {
    /// The rules.
    pub process_names: Vec<Rule>,
}

/// A piece of a parsed name template.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Lit(String),
    Comm,
    ExeBase,
    ExeFull,
    Username,
    Pid,
    StartTime,
    Match(String),
}

/// A parsed `{{...}}` name template (the subset of Go's text/template process-exporter users
/// write: literal text and field references).
#[derive(Debug, Clone, PartialEq)]
pub struct Template(Vec<Piece>);

impl Template {
    /// Parses a template; unsupported actions are errors.
    pub fn parse(src: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut rest = src;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Lit(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("unclosed action in template {src:?}"))?;
            let action = after[..close].trim();
            let piece = match action {
                ".Comm" => Piece::Comm,
                ".ExeBase" => Piece::ExeBase,
                ".ExeFull" => Piece::ExeFull,
                ".Username" => Piece::Username,
                ".PID" => Piece::Pid,
                ".StartTime" => Piece::StartTime,
                a => match a.strip_prefix(".Matches.") {
                    Some(key)
                        if !key.is_empty()
                            && key.chars().all(|c| c.is_alphanumeric() || c == '_') =>
                    {
                        Piece::Match(key.to_string())
                    }
                    _ => {
                        return Err(format!(
                            "unsupported template action {{{{{action}}}}} (supported: .Comm, \
                             .ExeBase, .ExeFull, .Username, .PID, .StartTime, .Matches.NAME)"
                        ));
                    }
                },
            };
            pieces.push(piece);
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Lit(rest.to_string()));
        }
        Ok(Self(pieces))
    }

    /// True when rendering needs the user name (so it is looked up only then).
    pub fn uses_username(&self) -> bool {
        self.0.contains(&Piece::Username)
    }
}

/// What a rule is matched against and a name is rendered from.
#[derive(Debug, Clone, Copy)]
pub struct ProcInfo<'a> {
    /// `comm` from `stat`.
    pub comm: &'a str,
    /// `/proc/<pid>/cmdline` as read (NUL-separated).
    pub cmdline_raw: &'a str,
    /// Effective user name (or the numeric UID when unknown); only filled when some template
    /// uses it.
    pub username: &'a str,
    /// PID.
    pub pid: i32,
    /// Start time, seconds since the epoch.
    pub start_time: f64,
}

/// One compiled rule.
#[derive(Debug, Clone)]
struct Compiled {
    comm: Option<Vec<String>>,
    /// base name → required full path ("" = any).
    exe: Option<HashMap<String, String>>,
    cmdline: Option<Vec<regex::Regex>>,
    name: Template,
}

/// The compiled `process_names` list: first match wins.
#[derive(Debug, Clone)]
pub struct Matcher {
    rules: Vec<Compiled>,
    /// When true (no `process_names` given), every process matches with `{{.Comm}}`.
    match_all: bool,
    uses_username: bool,
}

/// Go's `filepath.Base`.
pub fn go_base(path: &str) -> &str {
    if path.is_empty() {
        return ".";
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/";
    }
    match trimmed.rfind('/') {
        Some(i) => &trimmed[i + 1..],
        None => trimmed,
    }
}

impl Matcher {
    /// Compiles rules; an empty list means "every process, named `{{.Comm}}`" (sonde's default;
    /// process-exporter refuses to start without rules).
    pub fn new(rules: &[Rule]) -> Result<Self, String> {
        if rules.is_empty() {
            return Ok(Self::all());
        }
        let mut out = Vec::with_capacity(rules.len());
        for (i, r) in rules.iter().enumerate() {
            if r.comm.is_none() && r.exe.is_none() && r.cmdline.is_none() {
                return Err(format!(
                    "[{i}]: no matchers provided (comm, exe or cmdline)"
                ));
            }
            let name = Template::parse(r.name.as_deref().unwrap_or("{{.ExeBase}}"))
                .map_err(|e| format!("[{i}].name: {e}"))?;
            let exe = r.exe.as_ref().map(|list| {
                list.iter()
                    .map(|e| {
                        if e.contains('/') {
                            (go_base(e).to_string(), e.clone())
                        } else {
                            (e.clone(), String::new())
                        }
                    })
                    .collect()
            });
            out.push(Compiled {
                comm: r.comm.clone(),
                exe,
                cmdline: r
                    .cmdline
                    .as_ref()
                    .map(|l| l.iter().map(|p| p.regex().clone()).collect()),
                name,
            });
        }
        let uses_username = out.iter().any(|c| c.name.uses_username());
        Ok(Self {
            rules: out,
            match_all: false,
            uses_username,
        })
    }

    /// Every process, named by `{{.Comm}}`.
    pub fn all() -> Self {
        Self {
            rules: Vec::new(),
            match_all: true,
            uses_username: false,
        }
    }

    /// True for [`Matcher::all`] (no command line needed).
    pub fn is_match_all(&self) -> bool {
        self.match_all
    }

    /// True when some name template needs the user name.
    pub fn uses_username(&self) -> bool {
        self.uses_username
    }

    /// The group name of the first matching rule, rendered into `out`; false when no rule
    /// matches. `scratch` is reused for the joined command line.
    pub fn match_and_name(&self, p: &ProcInfo<'_>, scratch: &mut String, out: &mut String) -> bool {
        out.clear();
        if self.match_all {
            out.push_str(p.comm);
            return true;
        }
        let argv0 = super::parse::cmdline_args(p.cmdline_raw).next();
        let mut joined_ready = false;
        let mut captures: Vec<(String, String)> = Vec::new();
        'rules: for rule in &self.rules {
            if let Some(comms) = &rule.comm
                && !comms.iter().any(|c| c == p.comm)
            {
                continue;
            }
            if let Some(exes) = &rule.exe {
                let Some(a0) = argv0 else { continue };
                match exes.get(go_base(a0)) {
                    None => continue,
                    Some(full) if !full.is_empty() && full != a0 => continue,
                    Some(_) => {}
                }
            }
            captures.clear();
            if let Some(regexes) = &rule.cmdline {
                if !joined_ready {
                    scratch.clear();
                    for (i, a) in super::parse::cmdline_args(p.cmdline_raw).enumerate() {
                        if i > 0 {
                            scratch.push(' ');
                        }
                        scratch.push_str(a);
                    }
                    joined_ready = true;
                }
                for re in regexes {
                    let Some(caps) = re.captures(scratch) else {
                        continue 'rules;
                    };
                    for (i, name) in re.capture_names().enumerate() {
                        if let Some(name) = name {
                            let v = caps.get(i).map_or("", |m| m.as_str());
                            match captures.iter_mut().find(|(k, _)| k == name) {
                                Some(slot) => slot.1 = v.to_string(),
                                None => captures.push((name.to_string(), v.to_string())),
                            }
                        }
                    }
                }
            }
            render(&rule.name, p, argv0, &captures, out);
            return true;
        }
        false
    }
}

fn render(
    t: &Template,
    p: &ProcInfo<'_>,
    argv0: Option<&str>,
    captures: &[(String, String)],
    out: &mut String,
) {
    let exe_full = argv0.unwrap_or(p.comm);
    let exe_base = argv0.map_or(p.comm, go_base);
    for piece in &t.0 {
        match piece {
            Piece::Lit(s) => out.push_str(s),
            Piece::Comm => out.push_str(p.comm),
            Piece::ExeBase => out.push_str(exe_base),
            Piece::ExeFull => out.push_str(exe_full),
            Piece::Username => out.push_str(p.username),
            Piece::Pid => out.push_str(itoa::Buffer::new().format(p.pid)),
            Piece::StartTime => go_time_string(p.start_time, out),
            Piece::Match(k) => match captures.iter().find(|(n, _)| n == k) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str("<no value>"),
            },
        }
    }
}

/// Go's `time.Time.String()` of a UTC time: `2006-01-02 15:04:05.999999999 +0000 UTC` (the
/// fraction without trailing zeros, omitted when zero).
fn go_time_string(unix: f64, out: &mut String) {
    use std::fmt::Write as _;
    let secs = unix.floor() as i64;
    let mut centis = ((unix - secs as f64) * 100.0).round() as i64;
    let secs = if centis >= 100 {
        centis -= 100;
        secs + 1
    } else {
        secs
    };
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    if centis != 0 {
        let frac = format!("{centis:02}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push_str(" +0000 UTC");
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(yaml: &str) -> Vec<Rule> {
        let f: ExporterFile = serde_saphyr::from_str(yaml).expect("yaml");
        f.process_names
    }

    fn name(m: &Matcher, comm: &str, argv: &[&str]) -> Option<String> {
        let raw: String = argv.iter().map(|a| format!("{a}\0")).collect();
        let p = ProcInfo {
            comm,
            cmdline_raw: &raw,
            username: "alice",
            pid: 4242,
            start_time: 1_795_427_721.37,
        };
        let (mut scratch, mut out) = (String::new(), String::new());
        m.match_and_name(&p, &mut scratch, &mut out).then_some(out)
    }

    /// The first example of process-exporter's README ("Using a config file: process
    /// selectors"), with the groups process-exporter gives.
    #[test]
    fn readme_selector_example() {
        let m = Matcher::new(&rules(
            r#"
process_names:
  - comm:
    - bash
  - exe:
    - postgres
    - /usr/local/bin/prometheus
  - name: "{{.ExeFull}}:{{.Matches.Cfgfile}}"
    exe:
    - /usr/local/bin/process-exporter
    cmdline:
    - -config.path\s+(?P<Cfgfile>\S+)
"#,
        ))
        .expect("compile");
        assert_eq!(name(&m, "bash", &["-bash"]).as_deref(), Some("-bash"));
        assert_eq!(
            name(
                &m,
                "postgres",
                &["/usr/lib/postgresql/15/bin/postgres", "-D", "/x"]
            )
            .as_deref(),
            Some("postgres")
        );
        assert_eq!(
            name(&m, "prometheus", &["/usr/local/bin/prometheus"]).as_deref(),
            Some("prometheus")
        );
        // exe with a slash must equal argv[0] exactly
        assert_eq!(name(&m, "prometheus", &["/opt/prometheus"]), None);
        assert_eq!(name(&m, "prometheus", &["prometheus"]), None);
        assert_eq!(
            name(
                &m,
                "process-exporte",
                &[
                    "/usr/local/bin/process-exporter",
                    "-config.path",
                    "/etc/pe.yml"
                ]
            )
            .as_deref(),
            Some("/usr/local/bin/process-exporter:/etc/pe.yml")
        );
        // all selectors must match: right exe, no -config.path
        assert_eq!(
            name(&m, "process-exporte", &["/usr/local/bin/process-exporter"]),
            None
        );
        // kernel threads have no argv: exe never matches
        assert_eq!(name(&m, "postgres", &[]), None);
    }

    /// The README's "config I use on my home machine" and the Debian default.
    #[test]
    fn readme_home_and_default_examples() {
        let m = Matcher::new(&rules(
            r#"
process_names:
  - comm:
    - chromium-browse
    - bash
    - prometheus
    - gvim
  - exe:
    - /sbin/upstart
    cmdline:
    - --user
    name: upstart:-user
"#,
        ))
        .expect("compile");
        assert_eq!(
            name(
                &m,
                "chromium-browse",
                &[
                    "/usr/lib/chromium-browser/chromium-browser",
                    "--type=renderer"
                ]
            )
            .as_deref(),
            Some("chromium-browser")
        );
        assert_eq!(
            name(&m, "upstart", &["/sbin/upstart", "--user"]).as_deref(),
            Some("upstart:-user")
        );
        assert_eq!(name(&m, "upstart", &["/sbin/upstart"]), None);
        assert_eq!(name(&m, "vim", &["vim"]), None);

        let d = Matcher::new(&rules(
            "process_names:\n  - name: \"{{.Comm}}\"\n    cmdline:\n    - '.+'\n",
        ))
        .expect("compile");
        assert_eq!(
            name(&d, "sshd", &["sshd: alice@pts/0"]).as_deref(),
            Some("sshd")
        );
        assert_eq!(
            name(&d, "kthreadd", &[]),
            None,
            "empty cmdline does not match .+"
        );
    }

    #[test]
    fn first_match_wins_and_templates() {
        let m = Matcher::new(&rules(
            r#"
process_names:
  - name: "{{.Username}}/{{.Comm}}/{{.PID}}/{{.StartTime}}/{{ .Matches.nope }}"
    comm: [worker]
  - name: "java-{{.Matches.jar}}"
    cmdline: ['-jar\s+(?P<jar>[^/ ]+)\.jar', 'java']
  - name: "second"
    comm: [worker, java]
"#,
        ))
        .expect("compile");
        assert_eq!(
            name(&m, "worker", &["w"]).as_deref(),
            Some("alice/worker/4242/2026-11-23 09:55:21.37 +0000 UTC/<no value>")
        );
        assert_eq!(
            name(&m, "java", &["/usr/bin/java", "-jar", "app.jar"]).as_deref(),
            Some("java-app")
        );
        assert_eq!(
            name(&m, "java", &["/usr/bin/java"]).as_deref(),
            Some("second")
        );
        assert!(m.uses_username());
    }

    #[test]
    fn exe_base_of_rewritten_argv_and_default() {
        let m = Matcher::new(&rules("process_names:\n  - comm: [sshd]\n")).expect("compile");
        // process-exporter takes filepath.Base of the whole argv[0]
        assert_eq!(
            name(&m, "sshd", &["sshd: alice@pts/0"]).as_deref(),
            Some("0")
        );
        assert_eq!(name(&m, "sshd", &[]).as_deref(), Some("sshd"));
        let all = Matcher::new(&[]).expect("default");
        assert_eq!(
            name(&all, "kworker/0:1", &[]).as_deref(),
            Some("kworker/0:1")
        );
        assert_eq!(go_base("/usr/bin/"), "bin");
        assert_eq!(go_base("///"), "/");
        assert_eq!(go_base(""), ".");
    }

    #[test]
    fn bad_rules_are_reported() {
        assert_eq!(
            Matcher::new(&rules("process_names:\n  - name: x\n"))
                .err()
                .as_deref(),
            Some("[0]: no matchers provided (comm, exe or cmdline)")
        );
        let e = Matcher::new(&rules(
            "process_names:\n  - comm: [a]\n    name: '{{.Cgroups}}'\n",
        ))
        .expect_err("unsupported");
        assert!(
            e.starts_with("[0].name: unsupported template action {{.Cgroups}}"),
            "{e}"
        );
        assert_eq!(
            Template::parse("a{{.Comm").err().as_deref(),
            Some("unclosed action in template \"a{{.Comm\"")
        );
    }

    #[test]
    fn go_time_strings() {
        let mut s = String::new();
        go_time_string(0.0, &mut s);
        assert_eq!(s, "1970-01-01 00:00:00 +0000 UTC");
        s.clear();
        go_time_string(951_782_400.5, &mut s);
        assert_eq!(s, "2000-02-29 00:00:00.5 +0000 UTC");
    }
}
