"""Helpers shared by the benchmarks in this directory (imported as `common`: each script runs
with bench/ first on sys.path): a free local port, a process's CPU seconds and resident memory
from /proc/PID (proc(5): `stat` fields 14-15 utime/stime in clock ticks, `status` VmRSS in kB),
waiting for an exporter to answer, and percentiles.
"""
import http.client, os, socket, time

TICKS = os.sysconf("SC_CLK_TCK")


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / TICKS  # utime, stime (fields 14, 15)


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def wait_up(port, timeout=20, what="exporter"):
    """Polls GET /metrics until it answers 200; returns that response's body."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/metrics")
            r = c.getresponse()
            body = r.read()
            if r.status == 200:
                return body
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} on port {port} did not come up")
