//! Shared helpers for the integration tests: start the real `sonde` binary and the real
//! Debian-packaged node_exporter / Prometheus on free loopback ports, speak raw HTTP/1.1 to them
//! (so tests control every header), and compare expositions parsed with sonde's parser.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sonde::expo::parse::{ParsedFamily, parse};

/// The repository root (fixtures live under `tests/fixtures`).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A recorded host tree: `tests/fixtures/hosts/<name>`.
pub fn fixture_host(name: &str) -> PathBuf {
    repo().join("tests/fixtures/hosts").join(name)
}

/// The shipped rule files, `monitoring/rules/*.yml` (not the `tests/` directory), sorted.
pub fn shipped_rule_files() -> Vec<PathBuf> {
    let dir = repo().join("monitoring/rules");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    files
}

/// A port that was free a moment ago (for programs that cannot report the port they bound).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// A child process killed when dropped, with its stderr collected in the background.
pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
    /// sonde's StatsD UDP address, when it reported one.
    pub statsd: Option<SocketAddr>,
    /// sonde's data directory (`--path.data`), removed on drop.
    pub data_dir: Option<tempfile::TempDir>,
    stderr: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// The stderr lines received so far.
    pub fn stderr_lines(&mut self) -> &[String] {
        while let Ok(line) = self.stderr.try_recv() {
            self.seen.push(line);
        }
        &self.seen
    }

    /// Every stderr line, waiting for the process to close stderr (use after it exited).
    pub fn drain_stderr(&mut self) -> Vec<String> {
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        self.seen.clone()
    }

    /// Sends a signal and waits for the exit status (at most `within`).
    pub fn signal_and_wait(&mut self, signal: &str, within: Duration) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args([format!("-{signal}"), pid])
            .status()
            .expect("kill");
        assert!(ok.success());
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "process did not exit within {within:?} after SIG{signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn spawn_stderr_reader(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().expect("stderr piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Starts `sonde` with `args` (plus a loopback listen address on port 0 and JSON logs) and
/// waits for its "listening" log line, which carries the bound address.
pub fn start_sonde(args: &[&str]) -> Daemon {
    let data = tempfile::tempdir().expect("data dir");
    let mut d = start_sonde_with_data(args, data.path());
    d.data_dir = Some(data);
    d
}

/// [`start_sonde`] with a given data directory (which outlives the daemon).
pub fn start_sonde_with_data(args: &[&str], data_dir: &Path) -> Daemon {
    start_sonde_env(args, data_dir, &[])
}

/// [`start_sonde_with_data`] with extra environment variables.
pub fn start_sonde_env(args: &[&str], data_dir: &Path, env: &[(&str, &str)]) -> Daemon {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sonde"))
        .envs(env.iter().copied())
        .arg(format!("--path.data={}", data_dir.display()))
        // Tests run in parallel: never the default :8125.
        .arg("--statsd.listen-udp=127.0.0.1:0")
        .args(args)
        .args([
            "--web.listen-address",
            "127.0.0.1:0",
            "--log.format",
            "json",
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sonde");
    let rx = spawn_stderr_reader(&mut child);
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let parsed = serde_json::from_str::<serde_json::Value>(&line).ok();
                let field = |k: &str| {
                    parsed
                        .as_ref()
                        .and_then(|v| v["fields"][k].as_str().map(str::to_string))
                };
                let addr = field("address");
                let statsd = field("statsd_udp").and_then(|a| a.parse().ok());
                seen.push(line);
                if let Some(addr) = addr {
                    return Daemon {
                        child,
                        statsd,
                        data_dir: None,
                        addr: addr.parse().expect("address in log line"),
                        stderr: rx,
                        seen,
                    };
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!("sonde did not report listening; stderr: {seen:#?}");
            }
        }
    }
}

/// Why one attempt to start a program on a port failed.
#[derive(Debug)]
pub enum StartError {
    /// The port was taken by another process between [`free_port`] and the program's bind:
    /// the program exited complaining about the bind, or the process answering on the port is
    /// not ours (identity check failed). Worth retrying on a fresh port.
    PortTaken(String),
    /// Anything else (the program exited for another reason, or never became ready).
    Failed(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::PortTaken(m) => write!(f, "port taken: {m}"),
            StartError::Failed(m) => write!(f, "{m}"),
        }
    }
}

/// Starts a program that listens on `port` and waits until `probe_path` answers 200.
/// Panics if it exits or is not ready within 30 s. No identity check: prefer
/// [`start_with_retries`] for programs started on a [`free_port`].
pub fn start_on_port(program: &str, args: &[String], port: u16, probe_path: &str) -> Daemon {
    try_start_on_port(program, args, port, probe_path, &|_, _| Ok(()))
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// One attempt: spawns `program`, then until it is ready checks first that the child is still
/// running (so a child that died on "address already in use" is never mistaken for the
/// process that took its port), then probes `probe_path`; once that answers 200, `identity`
/// (given the address and our child's pid) must confirm that the process answering is ours:
/// another test binary's Prometheus answers `/-/ready` too, and node_exporter's landing page
/// answers every path.
pub fn try_start_on_port(
    program: &str,
    args: &[String],
    port: u16,
    probe_path: &str,
    identity: &dyn Fn(SocketAddr, u32) -> Result<(), String>,
) -> Result<Daemon, StartError> {
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| StartError::Failed(format!("spawn {program}: {e}")))?;
    let rx = spawn_stderr_reader(&mut child);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let mut d = Daemon {
        child,
        statsd: None,
        data_dir: None,
        addr,
        stderr: rx,
        seen: Vec::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = d.child.try_wait().expect("try_wait") {
            let lines = d.drain_stderr();
            let msg = format!("{program} on port {port} exited with {status}: {lines:#?}");
            let bind = lines
                .iter()
                .any(|l| l.contains("address already in use") || l.contains("bind"));
            return Err(if bind {
                StartError::PortTaken(msg)
            } else {
                StartError::Failed(msg)
            });
        }
        if try_get(addr, probe_path, &[]).is_ok_and(|r| r.status == 200) {
            // Dropping `d` on a mismatch kills our child, which is at best about to fail its bind.
            return match identity(addr, d.child.id()) {
                Ok(()) => Ok(d),
                Err(e) => Err(StartError::PortTaken(format!(
                    "{program}: port {port} answers, but not as our process: {e}"
                ))),
            };
        }
        if Instant::now() >= deadline {
            return Err(StartError::Failed(format!(
                "{program} not ready on port {port} within 30 s: {:#?}",
                d.stderr_lines()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Calls `attempt` with a [`free_port`]; on [`StartError::PortTaken`] retries on a fresh
/// port, 3 attempts in all. Panics naming `what` with every attempt's error otherwise.
pub fn start_with_retries(
    what: &str,
    attempt: impl Fn(u16) -> Result<Daemon, StartError>,
) -> Daemon {
    let mut errors = Vec::new();
    for _ in 0..3 {
        match attempt(free_port()) {
            Ok(d) => return d,
            Err(StartError::PortTaken(e)) => errors.push(e),
            Err(StartError::Failed(e)) => {
                errors.push(e);
                break;
            }
        }
    }
    panic!("could not start {what}:\n{}", errors.join("\n"))
}

/// A Prometheus configuration scraping `target` as job `sonde` every second (and evaluating
/// rules every second). Callers append `rule_files:` or `alerting:` sections.
pub fn prometheus_config(target: SocketAddr) -> String {
    prometheus_config_every(target, 1)
}

/// [`prometheus_config`] with scrape interval and timeout `scrape_seconds` (rules are still
/// evaluated every second).
pub fn prometheus_config_every(target: SocketAddr, scrape_seconds: u32) -> String {
    format!(
        "global:\n  scrape_interval: {scrape_seconds}s\n  scrape_timeout: {scrape_seconds}s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: sonde\n    static_configs:\n      - targets: ['{target}']\n"
    )
}

/// Starts the real Prometheus on a free port with `config` (YAML text) written to
/// `dir/prometheus.yml` and its TSDB in `dir/tsdb`, plus `extra` flags; returns once it is ready
/// and is ours (see [`try_start_prometheus_on`]), retrying on a fresh port if it is not.
pub fn start_prometheus(dir: &Path, config: &str, extra: &[&str]) -> Daemon {
    start_with_retries("prometheus", |port| {
        try_start_prometheus_on(dir, config, extra, port)
    })
}

/// One attempt of [`start_prometheus`] on `port`: ready, and `/api/v1/status/flags` shows our
/// configuration file (so it is not another test's Prometheus that took the port).
pub fn try_start_prometheus_on(
    dir: &Path,
    config: &str,
    extra: &[&str],
    port: u16,
) -> Result<Daemon, StartError> {
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, config).expect("write prometheus.yml");
    let cfg_text = cfg.display().to_string();
    let mut args = vec![
        format!("--config.file={cfg_text}"),
        format!("--storage.tsdb.path={}", dir.join("tsdb").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--log.level=warn".to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let identity = |addr: SocketAddr, _child: u32| {
        let r = try_get(addr, "/api/v1/status/flags", &[]).map_err(|e| e.to_string())?;
        let v: serde_json::Value = serde_json::from_slice(&r.body)
            .map_err(|e| format!("status/flags: {e}: {}", String::from_utf8_lossy(&r.body)))?;
        match v["data"]["config.file"].as_str() {
            Some(f) if f == cfg_text => Ok(()),
            other => Err(format!("config.file {other:?}, ours is {cfg_text:?}")),
        }
    };
    try_start_on_port("prometheus", &args, port, "/-/ready", &identity)
}

/// Starts the real Alertmanager (clustering off) on a free port with `config` (YAML text)
/// written to `dir/alertmanager.yml` and its data in `dir/alertmanager`, plus `extra` flags;
/// returns once it is ready and is ours (see [`try_start_alertmanager_on`]), retrying on a
/// fresh port if it is not.
pub fn start_alertmanager(dir: &Path, config: &str, extra: &[&str]) -> Daemon {
    start_with_retries("prometheus-alertmanager", |port| {
        try_start_alertmanager_on(dir, config, extra, port)
    })
}

/// One attempt of [`start_alertmanager`] on `port`: ready, and `/api/v2/status` shows a
/// configuration with every URL of ours (the receivers' URLs name the test's webhook port,
/// so they identify our Alertmanager; Alertmanager 0.25 shows webhook URLs unmasked).
pub fn try_start_alertmanager_on(
    dir: &Path,
    config: &str,
    extra: &[&str],
    port: u16,
) -> Result<Daemon, StartError> {
    let cfg = dir.join("alertmanager.yml");
    std::fs::write(&cfg, config).expect("write alertmanager.yml");
    let urls: Vec<String> = regex::Regex::new(r#"https?://[^\s'"]+"#)
        .expect("regex")
        .find_iter(config)
        .map(|m| m.as_str().to_string())
        .collect();
    assert!(
        !urls.is_empty(),
        "start_alertmanager identifies its Alertmanager by the configured URLs; none in:\n{config}"
    );
    let mut args = vec![
        format!("--config.file={}", cfg.display()),
        format!("--storage.path={}", dir.join("alertmanager").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--cluster.listen-address=".to_string(),
        "--log.level=warn".to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let identity = |addr: SocketAddr, _child: u32| {
        let r = try_get(addr, "/api/v2/status", &[]).map_err(|e| e.to_string())?;
        let v: serde_json::Value = serde_json::from_slice(&r.body)
            .map_err(|e| format!("/api/v2/status: {e}: {}", String::from_utf8_lossy(&r.body)))?;
        let original = v["config"]["original"].as_str().unwrap_or_default();
        match urls.iter().find(|u| !original.contains(u.as_str())) {
            None => Ok(()),
            Some(u) => Err(format!("its configuration lacks our URL {u}:\n{original}")),
        }
    };
    try_start_on_port(
        "prometheus-alertmanager",
        &args,
        port,
        "/-/ready",
        &identity,
    )
}

/// Polls `GET /-/ready` on `addr` until it answers 200; panics after `within`.
pub fn wait_ready(addr: SocketAddr, within: Duration) {
    let deadline = Instant::now() + within;
    while get(addr, "/-/ready", &[]).status != 200 {
        assert!(Instant::now() < deadline, "{addr} never became ready");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls the instant query `q` every 100 ms until it returns at least one series (returned);
/// panics naming `what` after `within`.
pub fn wait_for_query(
    prom: SocketAddr,
    q: &str,
    within: Duration,
    what: &str,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + within;
    loop {
        let r = query(prom, q);
        if !r.is_empty() {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "{what} (no result for {q} within {within:?})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Upstream node_exporter 1.5's `--collector.filesystem.mount-points-exclude` (Debian's build
/// also excludes /run, /mnt and /media).
pub const UPSTREAM_MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";

/// Starts the Debian-packaged node_exporter 1.5 with `args` on a free port. Debian patches
/// three defaults (netdev excludes `lo`, a textfile directory, more excluded mount points);
/// all are reset to upstream's here.
pub fn start_node_exporter(args: &[&str]) -> Daemon {
    let all = |port: u16| {
        let mut all: Vec<String> = vec![
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--collector.netdev.device-exclude=".into(),
            "--log.level=error".into(),
            format!("--collector.filesystem.mount-points-exclude={UPSTREAM_MOUNT_POINTS_EXCLUDE}"),
        ];
        if !args
            .iter()
            .any(|a| a.starts_with("--collector.textfile.directory"))
        {
            all.push("--collector.textfile.directory=".into());
        }
        all.extend(args.iter().map(|s| s.to_string()));
        all
    };
    // node_exporter has no API naming its flags (and its landing page answers every path):
    // check that the socket listening on the port belongs to our child.
    let identity = |addr: SocketAddr, child: u32| match listener_pid(addr.port()) {
        Some(pid) if pid == child => Ok(()),
        other => Err(format!(
            "port {} is held by pid {other:?}, ours is {child}",
            addr.port()
        )),
    };
    start_with_retries("prometheus-node-exporter", |port| {
        try_start_on_port(
            "prometheus-node-exporter",
            &all(port),
            port,
            "/metrics",
            &identity,
        )
    })
}

/// The pid of the process holding the IPv4 loopback socket listening on `port`, from
/// `/proc/net/tcp` (state 0A = LISTEN) and the `socket:[inode]` links under `/proc/*/fd`.
pub fn listener_pid(port: u16) -> Option<u32> {
    let tcp = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let local = format!("0100007F:{port:04X}");
    let inode = tcp.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&local.as_str()) && f.get(3) == Some(&"0A"))
            .then(|| f.get(9).map(|i| i.to_string()))
            .flatten()
    })?;
    let want = format!("socket:[{inode}]");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let fds = std::fs::read_dir(e.path().join("fd")).ok()?;
        fds.flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.to_str() == Some(&want)))
            .then_some(pid)
    })
}

/// An HTTP response read from a raw socket.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("utf-8 body")
    }
}

/// GET `path` with extra headers; panics on connection errors.
pub fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    try_get(addr, path, headers).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// GET `path` over HTTP/1.1 with `Connection: close`, decoding a chunked body.
pub fn try_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<Response> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw)
}

/// Splits a raw HTTP/1.1 response into status, headers and (de-chunked) body.
fn parse_response(raw: &[u8]) -> std::io::Result<Response> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body)?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| std::io::Error::other("bad chunk"))?;
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| std::io::Error::other("bad chunk size"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Fetches `/metrics` as text 0.0.4 and parses it.
pub fn scrape(addr: SocketAddr) -> Vec<ParsedFamily> {
    let r = get(addr, "/metrics", &[("Accept", "text/plain;version=0.0.4")]);
    assert_eq!(r.status, 200);
    parse(&r.text()).unwrap_or_else(|e| panic!("parsing exposition: {e}"))
}

/// A series' identity: metric name (with suffix) and sorted `name="value"` labels.
pub type SeriesKey = (String, Vec<(String, String)>);

/// Flattens families into `series -> value`.
pub fn series(families: &[ParsedFamily]) -> BTreeMap<SeriesKey, f64> {
    let mut out = BTreeMap::new();
    for f in families {
        for s in &f.samples {
            let mut labels = s.labels.clone();
            labels.sort();
            out.insert((s.name.clone(), labels), s.value);
        }
    }
    out
}

/// Renders a series key like the exposition does, for readable assertion messages.
pub fn show(key: &SeriesKey) -> String {
    let labels: Vec<String> = key.1.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{}{{{}}}", key.0, labels.join(","))
}

/// POSTs `body` to `path` with extra headers (HTTP/1.1, `Connection: close`).
pub fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write");
    s.write_all(body).expect("write body");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    parse_response(&raw).expect("HTTP response")
}

/// Percent-encodes a PromQL query for a URL.
pub fn encode_query(q: &str) -> String {
    let mut out = String::new();
    for b in q.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Runs an instant query against a Prometheus server; its `data.result` array.
pub fn query(prom: SocketAddr, q: &str) -> Vec<serde_json::Value> {
    let r = get(
        prom,
        &format!("/api/v1/query?query={}", encode_query(q)),
        &[],
    );
    assert_eq!(r.status, 200, "{q}: {}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// The value of one instant-query result, `NaN` and infinities included.
pub fn prom_value(v: &serde_json::Value) -> f64 {
    match v["value"][1].as_str().expect("value string") {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        s => s.parse().expect("number"),
    }
}

/// The value of one series (labels in any order), if present.
pub fn value_of(families: &[ParsedFamily], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut want: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    want.sort();
    series(families).get(&(name.to_string(), want)).copied()
}

/// Runs a command to completion, returning (exit code, stdout, stderr).
pub fn run(program: &str, args: &[&str], cwd: Option<&Path>) -> (i32, String, String) {
    let mut c = Command::new(program);
    c.args(args);
    if let Some(d) = cwd {
        c.current_dir(d);
    }
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}
pub mod dashboards;
pub mod fake_kube;
