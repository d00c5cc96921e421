//! The HTTP surface of the real binary: endpoints, `Accept` negotiation exactly as Prometheus
//! 2.x sends it, gzip, and the exact exposition of a fixture host in both text formats.

mod common;

use std::io::Read;

use common::*;

/// What Prometheus 2.42 sends when scraping (`scrape.acceptHeader`).
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const OM1: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const OM0: &str = "application/openmetrics-text; version=0.0.1; charset=utf-8";

fn fixture_sonde(extra: &[&str]) -> (Daemon, tempfile::NamedTempFile) {
    // A long min_interval makes back-to-back scrapes share one collection, so bodies compare
    // byte for byte.
    let cfg = tempfile::Builder::new()
        .suffix(".yaml")
        .tempfile()
        .expect("temp");
    std::fs::write(cfg.path(), "scrape:\n  min_interval_seconds: 60\n").expect("write");
    let root = fixture_host("modern");
    let procfs = format!("--path.procfs={}", root.join("proc").display());
    let mut args = vec![
        "--config",
        cfg.path().to_str().expect("utf-8"),
        &procfs,
        "--collector.disable-defaults",
        "--collector.loadavg",
    ];
    args.extend_from_slice(extra);
    (start_sonde(&args), cfg)
}

#[test]
fn health_readiness_landing_and_unknown_paths() {
    let (d, _cfg) = fixture_sonde(&[]);
    let r = get(d.addr, "/-/healthy", &[]);
    assert_eq!((r.status, r.text().as_str()), (200, "Healthy\n"));
    let r = get(d.addr, "/-/ready", &[]);
    assert_eq!((r.status, r.text().as_str()), (200, "Ready\n"));
    let r = get(d.addr, "/nope", &[]);
    assert_eq!(r.status, 404);
    let r = get(d.addr, "/", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let page = r.text();
    assert!(
        page.contains(&format!("<h1>sonde {}</h1>", env!("CARGO_PKG_VERSION"))),
        "{page}"
    );
    assert!(
        page.contains("<h2>Enabled collectors</h2><ul><li><code>loadavg</code></li><li><code>services</code></li><li><code>statsd</code></li></ul>"),
        "{page}"
    );
    for link in ["/metrics", "/-/healthy", "/-/ready"] {
        assert!(
            page.contains(&format!("<a href=\"{link}\">{link}</a>")),
            "{link}: {page}"
        );
    }
}

#[test]
fn accept_negotiation_follows_q_values() {
    let (d, _cfg) = fixture_sonde(&[]);
    let cases = [
        (None, TEXT),
        (Some(PROMETHEUS_ACCEPT), OM1),
        (Some("text/plain;version=0.0.4"), TEXT),
        (Some("application/openmetrics-text;version=0.0.1"), OM0),
        (
            Some("application/openmetrics-text;version=1.0.0;q=0.2,text/plain;version=0.0.4;q=0.5"),
            TEXT,
        ),
        (
            Some("application/openmetrics-text;version=1.0.0;q=0,*/*;q=0.1"),
            TEXT,
        ),
        (Some("*/*"), TEXT),
    ];
    for (accept, want) in cases {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
        let r = get(d.addr, "/metrics", &headers);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some(want), "Accept: {accept:?}");
    }
}

#[test]
fn fixture_loadavg_in_both_formats_exactly() {
    let (d, _cfg) = fixture_sonde(&[]);
    let text = get(d.addr, "/metrics", &[]).text();
    let want = "# HELP node_load1 1m load average.\n# TYPE node_load1 gauge\nnode_load1 0\n\
                # HELP node_load15 15m load average.\n# TYPE node_load15 gauge\nnode_load15 0.11\n\
                # HELP node_load5 5m load average.\n# TYPE node_load5 gauge\nnode_load5 0.11\n";
    assert!(text.contains(want), "{text}");
    assert!(
        text.contains("node_scrape_collector_success{collector=\"loadavg\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("sonde_scrape_collector_success{collector=\"loadavg\"} 1\n"),
        "{text}"
    );
    let om = get(d.addr, "/metrics", &[("Accept", PROMETHEUS_ACCEPT)]).text();
    assert!(om.contains(want), "{om}");
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(!text.contains("# EOF"));
}

#[test]
fn gzip_when_asked_and_identical_after_decompression() {
    let (d, _cfg) = fixture_sonde(&[]);
    let plain = get(d.addr, "/metrics", &[("Accept-Encoding", "identity")]);
    assert_eq!(plain.header("content-encoding"), None);
    let zipped = get(d.addr, "/metrics", &[("Accept-Encoding", "gzip, deflate")]);
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    let mut out = String::new();
    flate2::read::GzDecoder::new(&zipped.body[..])
        .read_to_string(&mut out)
        .expect("valid gzip");
    assert_eq!(out, plain.text());
    let refused = get(d.addr, "/metrics", &[("Accept-Encoding", "gzip;q=0")]);
    assert_eq!(refused.header("content-encoding"), None);
}

#[test]
fn custom_telemetry_path() {
    let (d, _cfg) = fixture_sonde(&["--web.telemetry-path", "/custom"]);
    assert_eq!(get(d.addr, "/metrics", &[]).status, 404);
    let r = get(d.addr, "/custom", &[]);
    assert_eq!(r.status, 200);
    assert!(r.text().contains("node_load15 0.11\n"));
}

#[test]
fn a_failing_collector_is_reported_and_the_scrape_still_succeeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let proc = dir.path().join("proc");
    std::fs::create_dir_all(&proc).expect("mkdir");
    std::fs::write(proc.join("loadavg"), "garbage\n").expect("write");
    std::fs::copy(fixture_host("modern").join("proc/stat"), proc.join("stat")).expect("copy");
    let procfs = format!("--path.procfs={}", proc.display());
    let mut d = start_sonde(&[
        &procfs,
        "--collector.disable-defaults",
        "--collector.loadavg",
        "--collector.stat",
    ]);
    for _ in 0..3 {
        let r = get(d.addr, "/metrics", &[]);
        assert_eq!(r.status, 200);
        let text = r.text();
        for line in [
            "sonde_scrape_collector_success{collector=\"loadavg\"} 0\n",
            "sonde_scrape_collector_success{collector=\"stat\"} 1\n",
            "node_scrape_collector_success{collector=\"loadavg\"} 0\n",
        ] {
            assert!(text.contains(line), "{line}: {text}");
        }
        assert!(!text.contains("node_load1 "), "{text}");
        let boot = sonde::expo::parse::parse(&text)
            .expect("parse")
            .into_iter()
            .find(|f| f.name == "node_boot_time_seconds")
            .expect("stat still collected");
        let want = std::fs::read_to_string(proc.join("stat"))
            .expect("read")
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .expect("btime")
            .trim()
            .parse::<f64>()
            .expect("number");
        assert_eq!(boot.samples[0].value, want);
        std::thread::sleep(std::time::Duration::from_millis(600));
    }
    // Three failed scrapes, one log line: failures are rate-limited.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let failures: Vec<String> = d
        .stderr_lines()
        .iter()
        .filter(|l| l.contains("collector failed"))
        .cloned()
        .collect();
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert!(
        failures[0].contains("\"collector\":\"loadavg\""),
        "{}",
        failures[0]
    );
    assert!(
        failures[0].contains("invalid 1m load average"),
        "{}",
        failures[0]
    );
}
