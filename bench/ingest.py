#!/usr/bin/env python3
"""Event ingest benchmark: StatsD lines over UDP at increasing rates, HTTP event batches, and
memory with many distinct label sets, against one sonde process.

For each offered StatsD rate: lines sent, lines sonde counted (sonde_statsd_lines_total), loss,
sonde's CPU (utime+stime from /proc/PID/stat) per second and per million lines. Then HTTP:
accepted events/s with 1000-event JSON batches on keep-alive connections from several client
processes. Then memory: RSS after 100,000 and 200,000 distinct label sets (the series cap is
100,000, so the second half must not grow it).

Usage: bench/ingest.py [--sonde target/release/sonde] [--seconds 5] [--markdown]
Build first: cargo build --release. The load generator is Python (one process per sender), so
the highest offered rates are limited by this machine's second core as much as by sonde.
"""
import argparse, http.client, json, multiprocessing, os, socket, subprocess, sys, tempfile, time

from common import cpu_seconds, free_port, rss_bytes


def rss_mb(pid):
    return rss_bytes(pid) / (1 << 20)


def metric(port, name, labels=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    body = c.getresponse().read().decode()
    want = name if not labels else name + "{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}"
    total = 0.0
    for line in body.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key == want:
            total += float(value)
    return total


def statsd_sender(port, rate, seconds, lines_per_packet, out):
    """Sends `rate` lines/s for `seconds`; reports lines sent."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    lines = [f"bench.requests.{i % 50}:1|c|#route:/r{i % 20},code:200".encode() for i in range(lines_per_packet * 4)]
    packets = [b"\n".join(lines[i:i + lines_per_packet]) for i in range(0, len(lines), lines_per_packet)]
    per_packet = lines_per_packet
    sent = 0
    start = time.perf_counter()
    end = start + seconds
    i = 0
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        due = int((now - start) * rate)
        while sent < due:
            s.sendto(packets[i % len(packets)], ("127.0.0.1", port))
            i += 1
            sent += per_packet
    out.put(sent)


def http_sender(port, seconds, batch, out):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    accepted = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        c.request("POST", "/api/v1/events", body=batch, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        accepted += json.loads(r.read())["accepted"]
    out.put(accepted)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sonde", default="target/release/sonde")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--rates", default="100000,250000,500000,750000,1000000")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()

    web, udp = free_port(), free_port(socket.SOCK_DGRAM)
    data = tempfile.mkdtemp()
    proc = subprocess.Popen(
        [a.sonde, f"--web.listen-address=127.0.0.1:{web}", f"--statsd.listen-udp=127.0.0.1:{udp}",
         f"--path.data={data}", "--collector.disable-defaults", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                metric(web, "sonde_build_info")
                break
            except OSError:
                time.sleep(0.1)
        rows = []
        for rate in [int(r) for r in a.rates.split(",")]:
            before = metric(web, "sonde_statsd_lines_total", [("result", "ok")])
            cpu0 = cpu_seconds(proc.pid)
            q = multiprocessing.Queue()
            senders = 2 if rate > 400000 else 1
            ps = [multiprocessing.Process(target=statsd_sender, args=(udp, rate / senders, a.seconds, 25, q)) for _ in range(senders)]
            t0 = time.perf_counter()
            for p in ps:
                p.start()
            sent = sum(q.get() for _ in ps)
            for p in ps:
                p.join()
            wall = time.perf_counter() - t0
            time.sleep(0.5)
            got = metric(web, "sonde_statsd_lines_total", [("result", "ok")]) - before
            cpu = cpu_seconds(proc.pid) - cpu0
            rows.append((rate, sent / wall, got / wall, 1 - got / sent if sent else 0, cpu / wall, cpu / (got / 1e6) if got else 0))

        batch = json.dumps([{"type": "request", "service": f"svc{i % 5}", "route": f"/r{i % 20}", "method": "GET",
                             "code": 200 if i % 10 else 503, "duration_seconds": (i % 100) / 1000} for i in range(1000)])
        q = multiprocessing.Queue()
        cpu0 = cpu_seconds(proc.pid)
        ps = [multiprocessing.Process(target=http_sender, args=(web, a.seconds, batch, q)) for _ in range(3)]
        t0 = time.perf_counter()
        for p in ps:
            p.start()
        accepted = sum(q.get() for _ in ps)
        for p in ps:
            p.join()
        wall = time.perf_counter() - t0
        http_cpu = (cpu_seconds(proc.pid) - cpu0) / wall
        http_rate = accepted / wall
        # Cross-check the clients' count with sonde's own counter.
        counted = metric(web, "sonde_ingest_events_total", [("transport", "http"), ("result", "accepted")])

        rss_before = rss_mb(proc.pid)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        mem = []
        for upto in (100_000, 200_000):
            start = 0 if upto == 100_000 else 100_000
            for base in range(start, upto, 25):
                s.sendto(b"\n".join(f"bench.distinct:1|c|#id:{i}".encode() for i in range(base, base + 25)), ("127.0.0.1", udp))
                if base % 2500 == 0:
                    time.sleep(0.001)
            time.sleep(1)
            mem.append((upto, metric(web, "sonde_statsd_series"), rss_mb(proc.pid)))

        out = []
        out.append(f"# sonde {a.sonde}; {a.seconds:.0f} s per step; {os.cpu_count()} CPUs")
        out.append("")
        out.append("| offered lines/s | sent lines/s | counted lines/s | loss | sonde CPU (cores) | CPU s per million lines |")
        out.append("|---:|---:|---:|---:|---:|---:|")
        for rate, sent, got, loss, cores, per_m in rows:
            out.append(f"| {rate:,} | {sent:,.0f} | {got:,.0f} | {loss:.2%} | {cores:.2f} | {per_m:.2f} |")
        out.append("")
        out.append(f"HTTP: {http_rate:,.0f} accepted events/s (1000-event batches, 3 clients; sonde counted {counted:,.0f} of the {accepted:,} the clients saw accepted), sonde CPU {http_cpu:.2f} cores")
        out.append("")
        out.append(f"Memory: RSS {rss_before:.1f} MB before distinct label sets; " + "; ".join(
            f"after {n:,} offered: {series:,.0f} StatsD series, RSS {r:.1f} MB" for n, series, r in mem))
        print("\n".join(out))
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    sys.exit(main())
