#!/usr/bin/env python3
"""Benchmark of sonde's cgroup collector on a synthetic host with 500 containers.

Generates a cgroup v2 tree (systemd driver, as a kubelet with containerd writes it) into a temp
directory on tmpfs: N pods (half burstable, half besteffort) with 2 app containers each plus
the pod's pause container, every cgroup with the files the collector reads (cpu.stat,
memory.{current,stat,events,swap.current,max,min,swap.max}, cpu.{max,weight}, io.stat,
pids.current, cgroup.procs, *.pressure), and a /proc with one process per container (comm,
ns/net link, net/dev). Then runs the release build of sonde with only the cgroup collector
pointed at it (`--path.procfs/--path.sysfs`, scrape.min_interval_seconds 0 so each scrape is a
real collection) and measures CPU per scrape (utime+stime of the sonde process over
sequential scrapes), CPU per container, scrape latency, series and resident memory.

Note: files on tmpfs are cheaper to read than real cgroupfs files (the kernel computes
memory.stat on read), so this measures sonde's own cost plus VFS reads; on a real node add the
kernel's cost of producing the files.

Usage: bench/containers.py [--containers 500] [--scrapes 300] [--sonde target/release/sonde]
Build first: cargo build --release.
"""
import argparse, http.client, os, shutil, statistics, subprocess, tempfile, time

from common import cpu_seconds, free_port, rss_bytes, wait_up


def write(root, rel, text):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w") as f:
        f.write(text)


MEMSTAT_KEYS = ("kernel kernel_stack pagetables sec_pagetables percpu sock vmalloc shmem zswap zswapped "
                "file_dirty file_writeback swapcached anon_thp file_thp shmem_thp inactive_anon active_anon "
                "active_file unevictable slab_reclaimable slab_unreclaimable slab workingset_refault_anon "
                "workingset_refault_file workingset_activate_anon workingset_activate_file "
                "workingset_restore_anon workingset_restore_file workingset_nodereclaim pgdemote_kswapd "
                "pgdemote_direct pgdemote_khugepaged pgscan pgsteal pgscan_kswapd pgscan_direct "
                "pgscan_khugepaged pgsteal_kswapd pgsteal_direct pgsteal_khugepaged pgrefill pgactivate "
                "pgdeactivate pglazyfree pglazyfreed zswpin zswpout zswpwb thp_fault_alloc "
                "thp_collapse_alloc thp_swpout thp_swpout_fallback").split()


def cgroup(root, rel, i, procs=""):
    b = f"sys/fs/cgroup/{rel}/"
    write(root, b + "cpu.stat", f"usage_usec {1000000 + i * 977}\nuser_usec {800000 + i * 500}\n"
          f"system_usec {200000 + i * 477}\nnice_usec 0\ncore_sched.force_idle_usec 0\nnr_periods {i * 10}\n"
          f"nr_throttled {i}\nthrottled_usec {i * 1000}\nnr_bursts 0\nburst_usec 0\n")
    write(root, b + "cpu.max", "50000 100000\n" if i % 2 else "max 100000\n")
    write(root, b + "cpu.weight", f"{1 + i % 100}\n")
    write(root, b + "memory.current", f"{100000000 + i * 4096}\n")
    write(root, b + "memory.swap.current", "0\n")
    write(root, b + "memory.events", f"low 0\nhigh 0\nmax {i % 3}\noom 0\noom_kill 0\noom_group_kill 0\n")
    write(root, b + "memory.max", "268435456\n" if i % 2 else "max\n")
    write(root, b + "memory.min", "0\n")
    write(root, b + "memory.swap.max", "max\n")
    stat = [f"anon {60000000 + i}", f"file {30000000 + i}", f"file_mapped {1000000 + i}",
            f"inactive_file {20000000 + i}", f"pgfault {100000 + i}", f"pgmajfault {i % 50}"]
    stat += [f"{k} {i}" for k in MEMSTAT_KEYS]
    write(root, b + "memory.stat", "\n".join(stat) + "\n")
    write(root, b + "io.stat", f"254:0 rbytes={i * 4096} wbytes={i * 8192} rios={i} wios={i} dbytes=0 dios=0\n")
    write(root, b + "pids.current", f"{1 + i % 20}\n")
    write(root, b + "cgroup.procs", procs)
    for res in ("cpu", "memory", "io"):
        write(root, b + f"{res}.pressure", f"some avg10=0.00 avg60=0.00 avg300=0.00 total={i * 31}\n"
              f"full avg10=0.00 avg60=0.00 avg300=0.00 total={i * 7}\n")


def generate(root, containers):
    write(root, "proc/1/mountinfo",
          "25 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n")
    os.makedirs(os.path.join(root, "proc/1/ns"), exist_ok=True)
    os.symlink("net:[4026531840]", os.path.join(root, "proc/1/ns/net"))
    write(root, "sys/block/vda/dev", "254:0\n")
    # Kubernetes nodes usually run without swap.
    write(root, "proc/meminfo", "MemTotal:       16384000 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\n")
    write(root, "sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n")
    cgroup(root, "kubepods.slice", 1)
    cgroup(root, "kubepods.slice/kubepods-burstable.slice", 2)
    cgroup(root, "kubepods.slice/kubepods-besteffort.slice", 3)
    netdev_head = ("Inter-|   Receive                                                |  Transmit\n"
                   " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
                   "    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n")
    pid = 10000
    n = 0
    pod = 0
    while n < containers:
        qos = "burstable" if pod % 2 == 0 else "besteffort"
        uid = f"{pod:08x}-1111-2222-3333-{pod:012x}"
        prel = f"kubepods.slice/kubepods-{qos}.slice/kubepods-{qos}-pod{uid.replace('-', '_')}.slice"
        cgroup(root, prel, pod)
        netns = f"net:[{4026532000 + pod}]"
        # the pause container
        pid += 1
        cgroup(root, f"{prel}/cri-containerd-{pod:064x}.scope", pod, f"{pid}\n")
        write(root, f"proc/{pid}/comm", "pause\n")
        for c in range(2):
            if n >= containers:
                break
            pid += 1
            cid = f"{(pod << 8) + c + 1:064x}"
            cgroup(root, f"{prel}/cri-containerd-{cid}.scope", n, f"{pid}\n{pid + 100000}\n")
            write(root, f"proc/{pid}/comm", "app\n")
            os.makedirs(os.path.join(root, f"proc/{pid}/ns"), exist_ok=True)
            os.symlink(netns, os.path.join(root, f"proc/{pid}/ns/net"))
            write(root, f"proc/{pid}/net/dev", netdev_head +
                  f"  eth0: {n * 1000} {n} 0 0 0 0 0 0 {n * 2000} {n * 2} 0 0 0 0 0 0\n")
            n += 1
        pod += 1
    return pod


def run(sonde, root, cfg_text, scrapes, containers):
    cfg = os.path.join(root, "sonde.yaml")
    with open(cfg, "w") as f:
        f.write(cfg_text)
    port = free_port()
    proc = subprocess.Popen([sonde, "--config", cfg, "--web.listen-address", f"127.0.0.1:{port}",
                             f"--path.procfs={root}/proc", f"--path.sysfs={root}/sys", f"--path.rootfs={root}/root",
                             "--collector.disable-defaults", "--collector.cgroup"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, MALLOC_ARENA_MAX="2"))
    try:
        body = wait_up(port, what="sonde").decode()
        rss_idle = rss_bytes(proc.pid)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(5):  # warm the per-path caches
            conn.request("GET", "/metrics")
            conn.getresponse().read()
        lat = []
        c0 = cpu_seconds(proc.pid)
        for _ in range(scrapes):
            t = time.perf_counter()
            conn.request("GET", "/metrics")
            r = conn.getresponse()
            body = r.read().decode()
            lat.append(time.perf_counter() - t)
        c1 = cpu_seconds(proc.pid)
        series = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
        reported = next((float(line.split()[-1]) for line in body.splitlines()
                         if line.startswith("sonde_cgroup_reported ")), float("nan"))
        cpu_ms = (c1 - c0) * 1000 / scrapes
        lat.sort()
        return {
            "cgroups reported": reported,
            "series": series,
            "CPU ms per scrape": cpu_ms,
            "CPU us per container": cpu_ms * 1000 / containers,
            "CPU us per reported cgroup": cpu_ms * 1000 / reported,
            "latency median ms": statistics.median(lat) * 1000,
            "latency p99 ms": lat[int(len(lat) * 0.99) - 1] * 1000,
            "RSS idle MB": rss_idle / 1e6,
            "RSS after MB": rss_bytes(proc.pid) / 1e6,
        }
    finally:
        proc.terminate()
        proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--containers", type=int, default=500)
    ap.add_argument("--scrapes", type=int, default=300)
    ap.add_argument("--sonde", default="target/release/sonde")
    a = ap.parse_args()
    if not os.path.exists(a.sonde):
        raise SystemExit(f"{a.sonde} not found: cargo build --release")
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    root = tempfile.mkdtemp(prefix="sonde-cgroup-bench-", dir=base)
    try:
        pods = generate(root, a.containers)
        cases = [
            ("defaults (pods + QoS reported, pause dropped, network on)", "scrape:\n  min_interval_seconds: 0\n"),
            ("containers only (drop_pod_cgroups, network off)",
             "scrape:\n  min_interval_seconds: 0\ncollectors:\n  cgroup:\n    drop_pod_cgroups: true\n    network: false\n"),
        ]
        print(f"# {a.containers} containers in {pods} pods (+{pods} pause containers); {a.scrapes} sequential "
              f"scrapes; kernel {os.uname().release}; {os.cpu_count()} CPUs; tree on {base or 'tmp'}\n")
        results = [(name, run(a.sonde, root, cfg, a.scrapes, a.containers)) for name, cfg in cases]
        keys = list(results[0][1])
        print("| metric | " + " | ".join(n for n, _ in results) + " |")
        print("|---|" + "---:|" * len(results))
        for k in keys:
            print(f"| {k} | " + " | ".join(f"{r[k]:.3f}" if isinstance(r[k], float) else str(r[k])
                                           for _, r in results) + " |")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
