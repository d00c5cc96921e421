#!/usr/bin/env python3
"""Side-by-side benchmark: sonde vs node_exporter on this host, in one run.

For each exporter: series per scrape, CPU milliseconds per scrape (utime+stime of the exporter
process from /proc/PID/stat over N sequential scrapes on one keep-alive connection, plain and
gzip), scrape latency median and p99, requests/s under `wrk -t2 -c4`, resident memory idle and
after the scrapes; then the ratios sonde/node_exporter.

Usage: bench/node.py [--scrapes 1000] [--sonde target/release/sonde] [--markdown]
sonde runs with scrape.min_interval_seconds 0, so every scrape is a real collection (concurrent
scrapes under wrk still share the collection in flight: that is the feature, and is reported as
such). Build first: cargo build --release.
"""
import argparse, http.client, os, statistics, subprocess, tempfile, time

from common import cpu_seconds, free_port, pct, rss_bytes, wait_up


def scrape_loop(port, n, gzip):
    headers = {"Accept-Encoding": "gzip"} if gzip else {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    lat = []
    body = b""
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("GET", "/metrics", headers=headers)
        r = conn.getresponse()
        body = r.read()
        lat.append(time.perf_counter() - t0)
        if r.status != 200:
            raise SystemExit(f"scrape failed: {r.status}")
    conn.close()
    return lat, body


def series(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    return sum(1 for l in text.splitlines() if l and not l.startswith("#"))


def wrk(port, seconds):
    out = subprocess.run(["wrk", "-t2", "-c4", f"-d{seconds}s", f"http://127.0.0.1:{port}/metrics"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise SystemExit("wrk printed no Requests/sec:\n" + out)


def measure(name, proc, port, n, wrk_seconds):
    wait_up(port)
    time.sleep(1.0)
    r = {"name": name, "rss_idle": rss_bytes(proc.pid), "series": series(port)}
    for gz in (False, True):
        c0 = cpu_seconds(proc.pid)
        lat, _ = scrape_loop(port, n, gz)
        c1 = cpu_seconds(proc.pid)
        key = "gzip" if gz else "plain"
        r[f"cpu_ms_{key}"] = (c1 - c0) * 1000 / n
        r[f"p50_ms_{key}"] = statistics.median(lat) * 1000
        r[f"p99_ms_{key}"] = pct(lat, 99) * 1000
    r["rss_after"] = rss_bytes(proc.pid)
    r["rps"] = wrk(port, wrk_seconds)
    r["rss_after_wrk"] = rss_bytes(proc.pid)
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scrapes", type=int, default=1000)
    ap.add_argument("--wrk-seconds", type=int, default=10)
    ap.add_argument("--sonde", default="target/release/sonde")
    ap.add_argument("--node-exporter", default="prometheus-node-exporter")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    if not os.path.exists(a.sonde):
        raise SystemExit(f"{a.sonde} not found: cargo build --release")
    tmp = tempfile.mkdtemp()
    cfg = os.path.join(tmp, "sonde.yaml")
    with open(cfg, "w") as f:
        f.write("scrape:\n  min_interval_seconds: 0\n")
    results = []
    env = dict(os.environ, MALLOC_ARENA_MAX="2")
    for name, cmd in (
        ("node_exporter", lambda p: [a.node_exporter, f"--web.listen-address=127.0.0.1:{p}"]),
        ("sonde", lambda p: [a.sonde, "--config", cfg, "--web.listen-address", f"127.0.0.1:{p}",
                               # node_exporter's job only: no containers, processes or StatsD.
                               "--no-collector.cgroup", "--no-collector.process", "--statsd.listen-udp=",
                               f"--path.data={tempfile.mkdtemp()}"]),
    ):
        port = free_port()
        proc = subprocess.Popen(cmd(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            results.append(measure(name, proc, port, a.scrapes, a.wrk_seconds))
        finally:
            proc.terminate()
            proc.wait()
    ne, so = results
    rows = [
        ("series per scrape", "series", "{:.0f}"),
        ("CPU ms per scrape (plain)", "cpu_ms_plain", "{:.3f}"),
        ("CPU ms per scrape (gzip)", "cpu_ms_gzip", "{:.3f}"),
        ("latency median ms (plain)", "p50_ms_plain", "{:.3f}"),
        ("latency p99 ms (plain)", "p99_ms_plain", "{:.3f}"),
        ("latency median ms (gzip)", "p50_ms_gzip", "{:.3f}"),
        ("latency p99 ms (gzip)", "p99_ms_gzip", "{:.3f}"),
        ("requests/s (wrk -t2 -c4)", "rps", "{:.0f}"),
        ("RSS idle MB", "rss_idle", "{:.1f}"),
        (f"RSS after {a.scrapes * 2} scrapes MB", "rss_after", "{:.1f}"),
        ("RSS after wrk MB", "rss_after_wrk", "{:.1f}"),
    ]
    print(f"# {a.scrapes} sequential scrapes per mode; kernel {os.uname().release}; {os.cpu_count()} CPUs\n")
    print("| metric | node_exporter | sonde | sonde / node_exporter |")
    print("|---|---:|---:|---:|")
    for label, key, fmt in rows:
        div = 1e6 if key.startswith("rss") else 1
        x, y = ne[key] / div, so[key] / div
        ratio = y / x if x else float("nan")
        print(f"| {label} | {fmt.format(x)} | {fmt.format(y)} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
