#!/usr/bin/env python3
"""Side-by-side benchmark: sonde's process collector vs process-exporter, on this host, in one run.

Starts N idle `sleep` processes (default 300), then runs process-exporter (Debian's
prometheus-process-exporter) and sonde (release build, only the process collector,
scrape.min_interval_seconds 0 so every scrape is a real collection) at the same time, with the
same process-exporter configuration file ({{.Comm}} for every process with a command line; both
without per-thread families and without smaps, process-exporter's -threads=false
-gather-smaps=false). For each: CPU milliseconds per scrape (utime+stime of the exporter from
/proc/PID/stat over the sequential scrapes of one keep-alive connection), scrape latency median
and p99, resident memory, namedprocess series, groups; then the ratios and whether the sets of
non-empty groups are equal.

Usage: bench/process.py [--scrapes 300] [--procs 300] [--sonde target/release/sonde] [--markdown]
Build first: cargo build --release.
"""
import argparse, http.client, os, re, statistics, subprocess, tempfile, time

from common import free_port, cpu_seconds, rss_bytes, pct


def get(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/metrics")
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    return r.status, body


def wait_up(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if get(port)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"exporter on port {port} did not come up")


def scrape_loop(port, n):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        r.read()
        lat.append(time.perf_counter() - t0)
        if r.status != 200:
            raise SystemExit(f"scrape failed: {r.status}")
    conn.close()
    return lat


NUM_PROCS = re.compile(r'^namedprocess_namegroup_num_procs\{groupname="((?:[^"\\]|\\.)*)"\} (\S+)$', re.M)


def groups(text):
    return {m.group(1): float(m.group(2)) for m in NUM_PROCS.finditer(text)}


def measure(name, proc, port, n, text):
    """`text`: a scrape taken at the same moment as the other exporter's, for the counts."""
    r = {"name": name, "rss_idle": rss_bytes(proc.pid)}
    r["series"] = sum(1 for l in text.splitlines() if l.startswith("namedprocess_namegroup_"))
    r["groups"] = len(groups(text))
    c0 = cpu_seconds(proc.pid)
    lat = scrape_loop(port, n)
    c1 = cpu_seconds(proc.pid)
    r["cpu_ms"] = (c1 - c0) * 1000 / n
    r["p50_ms"] = statistics.median(lat) * 1000
    r["p99_ms"] = pct(lat, 99) * 1000
    r["rss_after"] = rss_bytes(proc.pid)
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scrapes", type=int, default=300)
    ap.add_argument("--procs", type=int, default=300)
    ap.add_argument("--sonde", default="target/release/sonde")
    ap.add_argument("--process-exporter", default="prometheus-process-exporter")
    ap.add_argument("--markdown", action="store_true", help="(the table is always markdown)")
    a = ap.parse_args()
    if not os.path.exists(a.sonde):
        raise SystemExit(f"{a.sonde} not found: cargo build --release")
    tmp = tempfile.mkdtemp()
    pe_cfg = os.path.join(tmp, "process-exporter.yml")
    with open(pe_cfg, "w") as f:
        f.write("process_names:\n  - name: \"{{.Comm}}\"\n    cmdline:\n    - '.+'\n")
    sonde_cfg = os.path.join(tmp, "sonde.yaml")
    with open(sonde_cfg, "w") as f:
        f.write("scrape:\n  min_interval_seconds: 0\n"
                f"collectors:\n  process:\n    config_file: {pe_cfg}\n    kernel_threads: include\n")
    sleepers = [subprocess.Popen(["sleep", "3600"]) for _ in range(a.procs)]
    env = dict(os.environ, MALLOC_ARENA_MAX="2")
    daemons = []
    try:
        pe_port, so_port = free_port(), free_port()
        daemons.append(subprocess.Popen(
            [a.process_exporter, f"-web.listen-address=127.0.0.1:{pe_port}", f"-config.path={pe_cfg}",
             "-threads=false", "-gather-smaps=false"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
        daemons.append(subprocess.Popen(
            [a.sonde, "--config", sonde_cfg, "--collector.disable-defaults", "--collector.process",
             "--web.listen-address", f"127.0.0.1:{so_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
        wait_up(pe_port)
        wait_up(so_port)
        time.sleep(1.0)
        # groups compared at one moment: process-exporter before and after sonde
        pe_text = get(pe_port)[1]
        so_text = get(so_port)[1]
        pe_before, so_now, pe_after = groups(pe_text), groups(so_text), groups(get(pe_port)[1])
        pe = measure("process-exporter", daemons[0], pe_port, a.scrapes, pe_text)
        so = measure("sonde", daemons[1], so_port, a.scrapes, so_text)
    finally:
        for d in daemons:
            d.terminate()
            d.wait()
        for s in sleepers:
            s.kill()
            s.wait()
    nprocs = sum(1 for d in os.listdir("/proc") if d.isdigit())
    rows = [
        ("namedprocess series per scrape", "series", "{:.0f}"),
        ("groups (incl. empty ones)", "groups", "{:.0f}"),
        ("CPU ms per scrape", "cpu_ms", "{:.3f}"),
        ("latency median ms", "p50_ms", "{:.3f}"),
        ("latency p99 ms", "p99_ms", "{:.3f}"),
        ("RSS before scrapes MB", "rss_idle", "{:.1f}"),
        (f"RSS after {a.scrapes} scrapes MB", "rss_after", "{:.1f}"),
    ]
    print(f"# {a.scrapes} sequential scrapes each; {a.procs} extra idle sleep processes "
          f"(~{nprocs + a.procs} processes during the run); kernel {os.uname().release}; "
          f"{os.cpu_count()} CPUs\n")
    print("| metric | process-exporter | sonde | sonde / process-exporter |")
    print("|---|---:|---:|---:|")
    for label, key, fmt in rows:
        div = 1e6 if key.startswith("rss") else 1
        x, y = pe[key] / div, so[key] / div
        ratio = y / x if x else float("nan")
        print(f"| {label} | {fmt.format(x)} | {fmt.format(y)} | {ratio:.2f} |")
    # a group counts when its process count did not change around sonde's scrape
    stable = {k for k, v in pe_before.items() if v > 0 and pe_after.get(k) == v}
    unstable = {k for k in set(pe_before) | set(pe_after) if k not in stable}
    mine = {k for k, v in so_now.items() if v > 0} - unstable
    only_pe = sorted(k for k in stable if so_now.get(k) != pe_before[k])
    only_so = sorted(mine - stable)
    same = "yes" if not only_pe and not only_so else f"no (differ: {only_pe}; only sonde: {only_so})"
    print(f"\nSame non-empty groups with the same num_procs: {same} ({len(stable)} groups stable "
          f"during the comparison; {len(unstable)} transient groups left out)")


if __name__ == "__main__":
    main()
