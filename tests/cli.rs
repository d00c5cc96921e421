//! The command line as operators use it: `--version`, `check-config`, `print-default-config`,
//! node_exporter's flags, unknown collectors, and clean shutdown on SIGTERM and SIGINT.

mod common;

use std::time::Duration;

use common::*;

fn sonde(args: &[&str]) -> (i32, String, String) {
    run(env!("CARGO_BIN_EXE_sonde"), args, None)
}

fn temp_yaml(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::Builder::new()
        .suffix(".yaml")
        .tempfile()
        .expect("temp file");
    std::fs::write(f.path(), text).expect("write");
    f
}

#[test]
fn version_names_the_revision_and_compiler() {
    let (code, out, _) = sonde(&["--version"]);
    assert_eq!(code, 0);
    let rustc = run("rustc", &["--version"], None).1;
    let rustc_version = rustc.split_whitespace().nth(1).expect("rustc version");
    let line = out.trim();
    assert!(
        line.starts_with(&format!("sonde {} (revision ", env!("CARGO_PKG_VERSION"))),
        "{line}"
    );
    assert!(
        line.ends_with(&format!(", rustc {rustc_version})")),
        "{line}"
    );
}

#[test]
fn shipped_example_config_is_valid_and_equals_the_embedded_default() {
    let example = repo().join("config/sonde.yaml");
    let (code, out, err) = sonde(&["check-config", example.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("{}: OK (", example.display())),
        "{out}"
    );
    let (code, printed, _) = sonde(&["print-default-config"]);
    assert_eq!(code, 0);
    assert_eq!(
        printed,
        std::fs::read_to_string(&example).expect("read example")
    );
}

#[test]
fn check_config_names_the_bad_key_and_exits_non_zero() {
    let cases = [
        (
            "collectors:\n  loadavg:\n    enabld: true\n",
            "collectors.loadavg.enabld: line 3 column 5: unknown field `enabld`, expected one of enabled",
        ),
        (
            "scrape:\n  min_interval_seconds: -1\n",
            "scrape.min_interval_seconds: must be between 0 and 3600",
        ),
        (
            "web:\n  listen_address: \"nonsense\"\n",
            "web.listen_address:",
        ),
        (
            "bogus: 1\n",
            "bogus: line 1 column 1: unknown field `bogus`",
        ),
    ];
    for (yaml, expected) in cases {
        let f = temp_yaml(yaml);
        let (code, _, err) = sonde(&["check-config", f.path().to_str().expect("utf-8")]);
        assert_eq!(code, 1, "{yaml}: {err}");
        let prefix = format!("sonde: config file {}: ", f.path().display());
        let msg = err
            .trim()
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{err}"));
        assert!(
            msg.starts_with(expected),
            "{yaml}: got {msg:?}, want {expected:?}"
        );
        // The daemon refuses to start with the same message.
        let (code, _, err2) = sonde(&["--config", f.path().to_str().expect("utf-8")]);
        assert_eq!(code, 1);
        assert_eq!(err2, err);
    }
}

#[test]
fn missing_config_file_is_reported_with_the_os_error() {
    let (code, _, err) = sonde(&["--config", "/nonexistent/sonde.yaml"]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "sonde: config file /nonexistent/sonde.yaml: cannot read /nonexistent/sonde.yaml: No such file or directory (os error 2)"
    );
}

#[test]
fn unknown_collector_flag_is_refused() {
    let (code, _, err) = sonde(&["--collector.nosuch"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown collector \"nosuch\""), "{err}");
    let (code, _, err) = sonde(&["--no-collector.nosuch"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown collector \"nosuch\""), "{err}");
}

#[test]
fn collector_flags_select_what_runs() {
    let d = start_sonde(&[
        "--collector.disable-defaults",
        "--collector.loadavg",
        "--collector.stat",
        "--no-collector.stat",
    ]);
    let fams = scrape(d.addr);
    let collectors: Vec<String> = fams
        .iter()
        .find(|f| f.name == "sonde_scrape_collector_success")
        .expect("success family")
        .samples
        .iter()
        .map(|s| s.label("collector").expect("collector label").to_string())
        .collect();
    // The event-driven collectors (services, statsd) are not node collectors and stay on.
    assert_eq!(
        collectors,
        ["loadavg", "services", "statsd"].map(String::from).to_vec()
    );
}

#[test]
fn sigterm_and_sigint_shut_down_cleanly() {
    for sig in ["TERM", "INT"] {
        let mut d = start_sonde(&["--collector.disable-defaults", "--collector.loadavg"]);
        let status = d.signal_and_wait(sig, Duration::from_secs(10));
        assert_eq!(status.code(), Some(0), "SIG{sig}");
        let lines = d.drain_stderr().join("\n");
        assert!(lines.contains("\"message\":\"sonde stopped\""), "{lines}");
    }
}
