//! `promtool check metrics` on sonde's exposition of a fixture host: sonde must not add a single
//! lint problem beyond the ones node_exporter has on the same host (its camelCase names, which
//! dashboards depend on, are kept for compatibility), and its own `sonde_*` and `process_*`
//! families must be clean.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use common::*;

fn lint(exposition: &str) -> BTreeSet<String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(exposition.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn sonde_adds_no_lint_problem_beyond_node_exporter() {
    for host in ["modern", "legacy"] {
        let root = fixture_host(host);
        let flags = [
            format!("--path.procfs={}", root.join("proc").display()),
            format!("--path.sysfs={}", root.join("sys").display()),
            format!("--path.rootfs={}", root.join("root").display()),
        ];
        let args: Vec<&str> = flags.iter().map(String::as_str).collect();
        let sonde = start_sonde(&args);
        let ne = start_node_exporter(&args);
        let exposition = get(sonde.addr, "/metrics", &[]).text();
        let mine = lint(&exposition);
        // Exactly the names compatibility forces: node_exporter's camelCase families, and the
        // entropy gauges it measures in bits.
        let mut expected = BTreeSet::new();
        for f in sonde::expo::parse::parse(&exposition).expect("parse") {
            // promtool's camelCase rule: a lower-case letter followed by an upper-case one.
            let camel = f
                .name
                .as_bytes()
                .windows(2)
                .any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase());
            if camel {
                expected.insert(format!(
                    "{} metric names should be written in 'snake_case' not 'camelCase'",
                    f.name
                ));
            }
            if f.name.starts_with("node_entropy_") && f.name.ends_with("_bits") {
                expected.insert(format!(
                    "{} use base unit \"bytes\" instead of \"bits\"",
                    f.name
                ));
            }
        }
        assert_eq!(mine, expected, "{host}");
        let theirs: BTreeSet<String> = lint(&get(ne.addr, "/metrics", &[]).text())
            .into_iter()
            .filter(|l| {
                !l.starts_with("go_")
                    && !l.starts_with("promhttp_")
                    && !l.starts_with("node_systemd")
            })
            .collect();
        let extra: Vec<&String> = mine.difference(&theirs).collect();
        assert!(
            extra.is_empty(),
            "{host}: lint problems only sonde has: {extra:#?}"
        );
        let missing: Vec<&String> = theirs.difference(&mine).collect();
        assert!(
            missing.is_empty(),
            "{host}: node_exporter's families missing from sonde: {missing:#?}"
        );
        assert!(
            !mine.is_empty(),
            "{host}: node_exporter's camelCase lint lines expected"
        );
    }
}
