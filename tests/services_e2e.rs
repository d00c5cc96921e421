//! Service telemetry end to end through the real binary: events over StatsD (UDP) and HTTP
//! drive circuit breakers, request histograms and error budgets, read back from `/metrics` and
//! `/breaker`; error budgets survive a clean restart and a `kill -9` (up to one flush
//! interval), and a corrupt store is moved aside; a real Prometheus computes
//! `histogram_quantile` over sonde's request histogram.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::*;

fn write_config(dir: &std::path::Path, yaml: &str) -> String {
    let p = dir.join("sonde.yaml");
    std::fs::write(&p, yaml).expect("write config");
    p.to_str().expect("utf-8").to_string()
}

fn events(d: &Daemon, body: &str) -> Response {
    post(
        d.addr,
        "/api/v1/events",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

/// Polls `/metrics` until `cond` holds (UDP is asynchronous).
fn wait_for(d: &Daemon, what: &str, cond: impl Fn(&[sonde::expo::parse::ParsedFamily]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if cond(&scrape(d.addr)) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn breakers_from_statsd_and_http_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mapping = repo().join("tests/fixtures/statsd/events.yml");
    let cfg = write_config(
        dir.path(),
        &format!(
            "scrape:\n  min_interval_seconds: 0\n\
             ingest:\n  statsd:\n    mapping_file: {}\n\
             services:\n  circuit_breakers:\n    breakers:\n\
             \x20     - name: payments\n        service: payments\n        consecutive_failures: 3\n\
             \x20       open_duration_seconds: 3600\n        half_open_probes: 1\n",
            mapping.display()
        ),
    );
    let d = start_sonde(&["--config", &cfg, "--collector.disable-defaults"]);
    let udp = UdpSocket::bind("127.0.0.1:0").expect("udp");
    let statsd = d.statsd.expect("statsd address in the startup log");
    // One success, then three failures in one multi-line datagram: the breaker opens.
    udp.send_to(b"payments.charge.POST.200.duration:12|ms", statsd)
        .expect("send");
    udp.send_to(
        b"payments.charge.POST.503.duration:40|ms\npayments.charge.POST.503.duration:41|ms\npayments.charge.POST.503.duration:42|ms",
        statsd,
    )
    .expect("send");
    wait_for(&d, "four calls", |f| {
        value_of(
            f,
            "circuit_breaker_calls_total",
            &[("breaker", "payments"), ("outcome", "failure")],
        ) == Some(3.0)
    });
    // Over HTTP: a call while open is rejected; an application reports its own breaker.
    let r = events(
        &d,
        r#"[{"type":"request","service":"payments","route":"charge","method":"POST","code":200,"duration_seconds":0.01},
            {"type":"breaker_transition","breaker":"inventory","state":"open"},
            {"type":"breaker_transition","breaker":"inventory","state":"bogus"}]"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let body: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(body["accepted"], 2);
    assert_eq!(body["rejected"], 1);
    assert_eq!(body["errors"][0]["index"], 2);

    let f = scrape(d.addr);
    let v = |name: &str, labels: &[(&str, &str)]| value_of(&f, name, labels);
    for (state, want) in [("closed", 0.0), ("open", 1.0), ("half_open", 0.0)] {
        assert_eq!(
            v(
                "circuit_breaker_state",
                &[("breaker", "payments"), ("state", state)]
            ),
            Some(want),
            "{state}"
        );
    }
    assert_eq!(
        v(
            "circuit_breaker_state_transitions_total",
            &[("breaker", "payments"), ("state", "open")]
        ),
        Some(1.0)
    );
    for (outcome, want) in [
        ("success", 1.0),
        ("failure", 3.0),
        ("rejected", 1.0),
        ("slow", 0.0),
    ] {
        assert_eq!(
            v(
                "circuit_breaker_calls_total",
                &[("breaker", "payments"), ("outcome", outcome)]
            ),
            Some(want),
            "{outcome}"
        );
    }
    assert_eq!(
        v(
            "circuit_breaker_state",
            &[("breaker", "inventory"), ("state", "open")]
        ),
        Some(1.0)
    );
    assert_eq!(
        v(
            "circuit_breaker_state_transitions_total",
            &[("breaker", "inventory"), ("state", "open")]
        ),
        Some(1.0)
    );
    // The same events fed the request histogram and the error budget.
    let series = [
        ("service", "payments"),
        ("route", "charge"),
        ("method", "POST"),
    ];
    let with_code = |code: &'static str| {
        let mut l = series.to_vec();
        l.push(("code", code));
        l
    };
    assert_eq!(
        v("api_request_duration_seconds_count", &with_code("503")),
        Some(3.0)
    );
    assert_eq!(
        v("api_request_duration_seconds_sum", &with_code("503")),
        Some(0.123)
    );
    assert_eq!(
        v("api_request_duration_seconds_count", &with_code("200")),
        Some(2.0)
    );
    assert_eq!(
        v("service_errors_total", &[("service", "payments")]),
        Some(3.0)
    );
    assert_eq!(
        v("service_error_budget_remaining", &[("service", "payments")]),
        Some(997.0)
    );
    assert_eq!(
        v(
            "sonde_ingest_events_total",
            &[("transport", "statsd"), ("result", "accepted")]
        ),
        Some(4.0)
    );
    assert_eq!(
        v(
            "sonde_ingest_events_total",
            &[("transport", "http"), ("result", "rejected")]
        ),
        Some(1.0)
    );

    let all: serde_json::Value =
        serde_json::from_slice(&get(d.addr, "/breaker", &[]).body).expect("json");
    let names: Vec<&str> = all
        .as_array()
        .expect("array")
        .iter()
        .map(|b| b["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["inventory", "payments"]);
    let one = get(d.addr, "/breaker/payments", &[]);
    assert_eq!(one.status, 200);
    let one: serde_json::Value = serde_json::from_slice(&one.body).expect("json");
    assert_eq!(one["state"], "open");
    assert_eq!(one["consecutive_failures"], 3);
    let missing = get(d.addr, "/breaker/nope", &[]);
    assert_eq!(missing.status, 404);
}

fn remaining(d: &Daemon, service: &str) -> Option<f64> {
    value_of(
        &scrape(d.addr),
        "service_error_budget_remaining",
        &[("service", service)],
    )
}

fn errors_for(d: &Daemon, service: &str, n: usize) {
    let batch: Vec<String> = (0..n)
        .map(|_| format!(r#"{{"type":"error","service":"{service}"}}"#))
        .collect();
    let r = events(d, &format!("[{}]", batch.join(",")));
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn error_budgets_survive_restarts_and_a_corrupt_store_is_moved_aside() {
    let data = tempfile::tempdir().expect("data dir");
    let dir = tempfile::tempdir().expect("config dir");
    let cfg = write_config(
        dir.path(),
        "scrape:\n  min_interval_seconds: 0\nservices:\n  error_budgets:\n    flush_interval_seconds: 1\n",
    );
    let env = [("ERROR_BUDGETS", "api=10,worker=500")];
    let args = ["--config", cfg.as_str(), "--collector.disable-defaults"];

    // Clean stop: the final flush keeps everything.
    let mut d = start_sonde_env(&args, data.path(), &env);
    // Services with a configured budget are exposed from the start, untouched.
    assert_eq!(remaining(&d, "api"), Some(10.0));
    assert_eq!(remaining(&d, "worker"), Some(500.0));
    assert_eq!(remaining(&d, "other"), None);
    errors_for(&d, "api", 3);
    assert_eq!(remaining(&d, "api"), Some(7.0));
    assert_eq!(
        d.signal_and_wait("TERM", Duration::from_secs(10)).code(),
        Some(0)
    );
    drop(d);
    let mut d = start_sonde_env(&args, data.path(), &env);
    assert_eq!(remaining(&d, "api"), Some(7.0));
    assert_eq!(
        value_of(
            &scrape(d.addr),
            "service_error_budget_remaining_ratio",
            &[("service", "api")]
        ),
        Some(0.7)
    );

    // kill -9 after a flush interval: nothing lost either.
    errors_for(&d, "api", 2);
    std::thread::sleep(Duration::from_millis(2500));
    d.signal_and_wait("KILL", Duration::from_secs(10));
    drop(d);
    let mut d = start_sonde_env(&args, data.path(), &env);
    assert_eq!(remaining(&d, "api"), Some(5.0));
    assert_eq!(
        d.signal_and_wait("TERM", Duration::from_secs(10)).code(),
        Some(0)
    );
    drop(d);

    // A corrupt store: moved aside with a clear log line, sonde starts with full budgets.
    let store = data.path().join("budgets.redb");
    std::fs::write(&store, b"this is not a redb database at all, sorry").expect("corrupt");
    let mut d = start_sonde_env(&args, data.path(), &env);
    errors_for(&d, "api", 1);
    assert_eq!(remaining(&d, "api"), Some(9.0));
    let moved: Vec<String> = std::fs::read_dir(data.path())
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("budgets.redb.corrupt-"))
        .collect();
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(
        std::fs::read(data.path().join(&moved[0])).expect("moved file"),
        b"this is not a redb database at all, sorry"
    );
    let log = d.stderr_lines().join("\n");
    assert!(log.contains("is unreadable"), "{log}");
    assert!(log.contains(&moved[0]), "{log}");
    assert_eq!(
        value_of(&scrape(d.addr), "sonde_budget_store_resets_total", &[]),
        Some(1.0)
    );
}

#[test]
fn bad_error_budgets_variable_refuses_to_start() {
    let data = tempfile::tempdir().expect("data dir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sonde"))
        .arg(format!("--path.data={}", data.path().display()))
        .arg("--statsd.listen-udp=127.0.0.1:0")
        .arg("--web.listen-address=127.0.0.1:0")
        .env("ERROR_BUDGETS", "api=10,worker=lots")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("sonde: environment variable ERROR_BUDGETS: "),
        "{err}"
    );
    assert!(err.contains("worker"), "{err}");
}

#[test]
fn prometheus_computes_the_p95_of_a_known_latency_distribution() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "scrape:\n  min_interval_seconds: 0\n");
    let d = start_sonde(&["--config", &cfg, "--collector.disable-defaults"]);
    let prom = start_prometheus(dir.path(), &prometheus_config(d.addr), &[]);
    // 50 requests of 10 ms, 40 of 200 ms, 10 of 400 ms: 90 % are at most 0.25 s and the rest
    // between 0.25 and 0.5 s, so p95 interpolates to 0.25 + 0.25 * (95 - 90) / 10 = 0.375.
    let mut batch = Vec::new();
    for (n, secs) in [(50, 0.01), (40, 0.2), (10, 0.4)] {
        for _ in 0..n {
            batch.push(format!(
                r#"{{"type":"request","service":"api","route":"/users/{{id}}","method":"GET","code":200,"duration_seconds":{secs}}}"#
            ));
        }
    }
    let body = format!("[{}]", batch.join(","));
    let scraped_after = |t: f64| {
        let q = format!("timestamp(up{{job=\"sonde\"}}) > {t}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = get(
                prom.addr,
                &format!("/api/v1/query?query={}", encode_query(&q)),
                &[],
            );
            let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
            if v["data"]["result"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
            {
                return;
            }
            assert!(Instant::now() < deadline, "no scrape after {t}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs_f64()
    };
    // The same distribution twice, each followed by two scrapes: rate() then sees equal
    // first values and increases in every bucket, so every bucket is extrapolated alike and
    // the ratio between buckets is exactly the distribution's.
    for _ in 0..2 {
        assert_eq!(events(&d, &body).status, 200);
        let t = now() + 1.0;
        scraped_after(t);
        scraped_after(t + 1.0);
    }
    let q = "histogram_quantile(0.95, sum by (le)(rate(api_request_duration_seconds_bucket[1m])))";
    let r = get(
        prom.addr,
        &format!("/api/v1/query?query={}", encode_query(q)),
        &[],
    );
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    let got: f64 = v["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap_or_else(|| panic!("no result: {v}"))
        .parse()
        .expect("number");
    assert!((got - 0.375).abs() < 1e-9, "p95 {got}, want 0.375");
}

#[test]
fn statsd_over_a_unix_datagram_socket_with_bad_lines_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("statsd.sock");
    let flag = format!("--statsd.listen-unixgram={}", sock.display());
    let d = start_sonde(&["--collector.disable-defaults", &flag]);
    let client = std::os::unix::net::UnixDatagram::unbound().expect("socket");
    // Tags in all four styles, a sampled counter, and two broken lines in the same packet.
    client
        .send_to(
            b"jobs.done:3|c|@0.5|#queue:mail\nlogin.ok,region=eu:1|c\nbad line\ncache.hits#tier=l1:2|c\nx:1|zz\nq.depth[shard=7]:9|g",
            &sock,
        )
        .expect("send");
    wait_for(&d, "the packet", |f| {
        value_of(f, "sonde_statsd_packets_total", &[]) == Some(1.0)
    });
    let f = scrape(d.addr);
    assert_eq!(value_of(&f, "jobs_done", &[("queue", "mail")]), Some(6.0));
    assert_eq!(value_of(&f, "login_ok", &[("region", "eu")]), Some(1.0));
    assert_eq!(value_of(&f, "cache_hits", &[("tier", "l1")]), Some(2.0));
    assert_eq!(value_of(&f, "q_depth", &[("shard", "7")]), Some(9.0));
    assert_eq!(
        value_of(&f, "sonde_statsd_lines_total", &[("result", "ok")]),
        Some(4.0)
    );
    let bad: f64 = f
        .iter()
        .filter(|fam| fam.name == "sonde_statsd_lines_total")
        .flat_map(|fam| fam.samples.iter())
        .filter(|s| s.label("result") != Some("ok"))
        .map(|s| s.value)
        .sum();
    assert_eq!(bad, 2.0);
}
