//! Tests of the `process` collector on the recorded tree `tests/fixtures/process/proc` (real
//! `/proc/<pid>` directories of this machine: a multi-threaded process whose `io` is not
//! readable (pid 1), the kernel thread `kthreadd` (2), a `bash` (25138, uid 1000) with two
//! `sleep` children (25141; 25142 started with argv[0] `/usr/local/bin/worker`), a `python3`
//! (25139), a zombie (26219), and a process that exited while being recorded: `stat` but no
//! `status` (25188)).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::*;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/process")
}

fn host_at(root: &Path) -> HostRoot {
    HostRoot::new(root.join("proc"), root.join("sys"), root.join("root"))
}

type Time = Arc<Mutex<f64>>;

fn collector(cfg: &Config, root: &Path) -> (ProcessCollector, Time) {
    let time: Time = Arc::new(Mutex::new(1_000.0));
    let t = time.clone();
    let mut c = ProcessCollector::new(
        cfg,
        &host_at(root),
        Box::new(move || t.lock().map_or(0.0, |v| *v)),
    );
    c.count_from_boot();
    // Files of a recorded tree stay readable through an open descriptor after the test deletes
    // them (a real procfs file answers ESRCH): read by path here; kept files are tested live.
    c.fd_budget = 0;
    (c, time)
}

fn collect(c: &mut ProcessCollector) -> Sink {
    let mut sink = Sink::new();
    c.collect(&mut sink).expect("collect");
    sink
}

/// The value of `family{labels}`, labels rendered as the sink does (`a="x",b="y"`).
fn value(sink: &Sink, family: &str, labels: &str) -> Option<f64> {
    sink.families()
        .find(|f| f.name() == family)?
        .samples()
        .find(|s| s.labels == labels)
        .map(|s| s.value)
}

fn v(sink: &Sink, family: &str, labels: &str) -> f64 {
    value(sink, family, labels).unwrap_or_else(|| panic!("no {family}{{{labels}}}"))
}

fn groups(sink: &Sink) -> Vec<String> {
    sink.families()
        .find(|f| f.name() == "namedprocess_namegroup_num_procs")
        .map(|f| {
            f.samples()
                .map(|s| {
                    s.labels
                        .trim_start_matches("groupname=\"")
                        .trim_end_matches('"')
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn g(name: &str) -> String {
    format!("groupname=\"{name}\"")
}

const BTIME: f64 = 1_795_427_721.0;

#[test]
fn default_config_groups_by_comm_with_exact_values() {
    let (mut c, _) = collector(&Config::default(), &fixture());
    let s = collect(&mut c);
    // 25188 vanished mid-read (no status): skipped silently, not an error.
    assert_eq!(
        groups(&s),
        ["bash", "kernel", "process_api", "python3", "sleep"]
    );
    let n = "namedprocess_namegroup_";
    let f = |x: &str| format!("{n}{x}");

    // bash: one process
    assert_eq!(v(&s, &f("num_procs"), &g("bash")), 1.0);
    assert_eq!(v(&s, &f("read_bytes_total"), &g("bash")), 8192.0);
    assert_eq!(v(&s, &f("major_page_faults_total"), &g("bash")), 1.0);
    assert_eq!(v(&s, &f("minor_page_faults_total"), &g("bash")), 330.0);
    assert_eq!(
        v(
            &s,
            &f("memory_bytes"),
            "groupname=\"bash\",memtype=\"resident\""
        ),
        791.0 * 4096.0
    );
    assert_eq!(
        v(
            &s,
            &f("memory_bytes"),
            "groupname=\"bash\",memtype=\"virtual\""
        ),
        4_464_640.0
    );
    assert_eq!(v(&s, &f("open_filedesc"), &g("bash")), 5.0);
    assert_eq!(v(&s, &f("worst_fd_ratio"), &g("bash")), 5.0 / 20000.0);
    assert_eq!(
        v(&s, &f("oldest_start_time_seconds"), &g("bash")),
        (BTIME + 3564.73_f64).trunc()
    );
    assert_eq!(
        v(
            &s,
            &f("context_switches_total"),
            "ctxswitchtype=\"voluntary\",groupname=\"bash\""
        ),
        2.0
    );

    // process_api: 13 threads; context switches summed over task/*/status; states = the
    // process plus each thread (process-exporter's arithmetic); io unreadable counts 0.
    let pa = g("process_api");
    assert_eq!(
        v(
            &s,
            &f("cpu_seconds_total"),
            "groupname=\"process_api\",mode=\"user\""
        ),
        2.39
    );
    assert_eq!(
        v(
            &s,
            &f("cpu_seconds_total"),
            "groupname=\"process_api\",mode=\"system\""
        ),
        9.09
    );
    assert_eq!(
        v(
            &s,
            &f("context_switches_total"),
            "ctxswitchtype=\"voluntary\",groupname=\"process_api\""
        ),
        22467.0
    );
    assert_eq!(
        v(
            &s,
            &f("context_switches_total"),
            "ctxswitchtype=\"nonvoluntary\",groupname=\"process_api\""
        ),
        4509.0
    );
    assert_eq!(
        v(
            &s,
            &f("states"),
            "groupname=\"process_api\",state=\"Sleeping\""
        ),
        14.0
    );
    assert_eq!(v(&s, &f("num_threads"), &pa), 13.0);
    assert_eq!(v(&s, &f("read_bytes_total"), &pa), 0.0);
    assert_eq!(v(&s, &f("open_filedesc"), &pa), 7.0);
    assert_eq!(v(&s, &f("worst_fd_ratio"), &pa), 7.0 / 32768.0);

    // python3: a sleeping process and a zombie
    assert_eq!(v(&s, &f("num_procs"), &g("python3")), 2.0);
    assert_eq!(
        v(&s, &f("states"), "groupname=\"python3\",state=\"Zombie\""),
        1.0
    );
    assert_eq!(
        v(&s, &f("states"), "groupname=\"python3\",state=\"Sleeping\""),
        1.0
    );
    assert_eq!(v(&s, &f("minor_page_faults_total"), &g("python3")), 3116.0);
    assert_eq!(
        v(
            &s,
            &f("context_switches_total"),
            "ctxswitchtype=\"nonvoluntary\",groupname=\"python3\""
        ),
        4.0
    );
    assert_eq!(
        v(
            &s,
            &f("cpu_seconds_total"),
            "groupname=\"python3\",mode=\"user\""
        ),
        0.02
    );

    // sleep: the two children
    assert_eq!(v(&s, &f("num_procs"), &g("sleep")), 2.0);
    assert_eq!(
        v(
            &s,
            &f("memory_bytes"),
            "groupname=\"sleep\",memtype=\"resident\""
        ),
        (425.0 + 403.0) * 4096.0
    );
    assert_eq!(v(&s, &f("open_filedesc"), &g("sleep")), 10.0);

    // the kernel thread folded into "kernel"
    assert_eq!(v(&s, &f("num_procs"), &g("kernel")), 1.0);
    assert_eq!(v(&s, &f("oldest_start_time_seconds"), &g("kernel")), BTIME);
    assert_eq!(v(&s, &f("worst_fd_ratio"), &g("kernel")), 0.0);

    // no smaps, no threads families by default
    assert_eq!(
        value(
            &s,
            &f("memory_bytes"),
            "groupname=\"bash\",memtype=\"proportionalResident\""
        ),
        None
    );
    assert!(s.families().all(|fam| !fam.name().contains("_thread_")));
    assert_eq!(v(&s, "sonde_process_overflow_procs", ""), 0.0);
}

#[test]
fn smaps_and_kernel_thread_policies() {
    let cfg = Config {
        smaps: true,
        kernel_threads: KernelThreads::Include,
        ..Config::default()
    };
    let (mut c, _) = collector(&cfg, &fixture());
    let s = collect(&mut c);
    assert_eq!(
        groups(&s),
        ["bash", "kthreadd", "process_api", "python3", "sleep"]
    );
    assert_eq!(
        v(
            &s,
            "namedprocess_namegroup_memory_bytes",
            "groupname=\"sleep\",memtype=\"proportionalResident\""
        ),
        (226.0 + 209.0) * 1024.0
    );
    let cfg = Config {
        kernel_threads: KernelThreads::Exclude,
        ..Config::default()
    };
    let (mut c, _) = collector(&cfg, &fixture());
    assert_eq!(
        groups(&collect(&mut c)),
        ["bash", "process_api", "python3", "sleep"]
    );
}

fn rules(yaml: &str) -> Vec<Rule> {
    serde_saphyr::from_str::<ExporterFile>(yaml)
        .expect("yaml")
        .process_names
}

/// process-exporter's README selector example plus `-children`: the unmatched `sleep` child
/// of the matched `bash` joins the bash group; the `worker` (exe match on argv[0]) has its own
/// group although it is also bash's child (its own match wins).
#[test]
fn rules_and_children() {
    let yaml = r#"
process_names:
  - comm:
    - bash
  - exe:
    - postgres
    - /usr/local/bin/worker
  - name: "{{.ExeFull}}:{{.Matches.Cfgfile}}"
    exe:
    - /usr/local/bin/process-exporter
    cmdline:
    - -config.path\s+(?P<Cfgfile>\S+)
  - name: "py-{{.Username}}"
    cmdline: ['^/root/\.pyenv/.*python3 -c']
"#;
    let cfg = Config {
        process_names: Some(rules(yaml)),
        kernel_threads: KernelThreads::Include,
        ..Config::default()
    };
    let (mut c, _) = collector(&cfg, &fixture());
    let s = collect(&mut c);
    assert_eq!(groups(&s), ["bash", "py-root", "worker"]);
    assert_eq!(v(&s, "namedprocess_namegroup_num_procs", &g("bash")), 2.0);
    assert_eq!(v(&s, "namedprocess_namegroup_num_procs", &g("worker")), 1.0);
    // the zombie's parent is not in the tree: no group for it
    assert_eq!(
        v(&s, "namedprocess_namegroup_num_procs", &g("py-root")),
        1.0
    );

    let cfg = Config {
        children: false,
        ..cfg
    };
    let (mut c, _) = collector(&cfg, &fixture());
    let s = collect(&mut c);
    assert_eq!(v(&s, "namedprocess_namegroup_num_procs", &g("bash")), 1.0);
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let dst = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&dst).expect("mkdir");
            copy_tree(&entry.path(), &dst);
        } else {
            std::fs::copy(entry.path(), &dst).expect("copy");
        }
    }
}

fn set_stat_field(root: &Path, pid: &str, field: usize, value: u64) {
    let path = root.join("proc").join(pid).join("stat");
    let text = std::fs::read_to_string(&path).expect("stat");
    let close = text.rfind(')').expect(")");
    let mut fields: Vec<String> = text[close + 2..]
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    fields[field - 3] = value.to_string();
    std::fs::write(&path, format!("{} {}\n", &text[..=close], fields.join(" "))).expect("write");
}

/// Counters accumulate increases and keep what exited processes consumed; a process that
/// exits between listing and reading is skipped; empty groups expire after the TTL.
#[test]
fn counters_survive_exits_and_groups_expire() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&fixture(), dir.path());
    let (mut c, time) = collector(&Config::default(), dir.path());
    let cpu_user = "groupname=\"sleep\",mode=\"user\"";
    let fam = "namedprocess_namegroup_cpu_seconds_total";
    let s = collect(&mut c);
    assert_eq!(v(&s, fam, cpu_user), 0.0);

    // 25141 burns 0.5 s of user time
    set_stat_field(dir.path(), "25141", 14, 50);
    *time.lock().expect("clock") = 1_015.0;
    let s = collect(&mut c);
    assert_eq!(v(&s, fam, cpu_user), 0.5);

    // it exits: the group keeps its counter; its sibling keeps the group alive
    std::fs::remove_dir_all(dir.path().join("proc/25141")).expect("rm");
    // and bash exits between the listing and the read of its files
    std::fs::remove_file(dir.path().join("proc/25138/status")).expect("rm");
    std::fs::remove_file(dir.path().join("proc/25138/stat")).expect("rm");
    *time.lock().expect("clock") = 1_030.0;
    let s = collect(&mut c);
    assert_eq!(v(&s, fam, cpu_user), 0.5);
    assert_eq!(v(&s, "namedprocess_namegroup_num_procs", &g("sleep")), 1.0);
    assert_eq!(v(&s, "namedprocess_namegroup_num_procs", &g("bash")), 0.0);
    assert_eq!(
        v(
            &s,
            "namedprocess_namegroup_oldest_start_time_seconds",
            &g("bash")
        ),
        GO_ZERO_TIME_UNIX
    );
    assert_eq!(
        v(&s, "namedprocess_namegroup_read_bytes_total", &g("bash")),
        8192.0
    );

    // a new process with the PID of the exited one (other start time) starts from zero
    copy_tree(&dir.path().join("proc/25142"), &{
        let p = dir.path().join("proc/25141");
        std::fs::create_dir_all(&p).expect("mkdir");
        p
    });
    set_stat_field(dir.path(), "25141", 22, 999_999);
    set_stat_field(dir.path(), "25141", 14, 7);
    *time.lock().expect("clock") = 1_100.0;
    let s = collect(&mut c);
    assert_eq!(v(&s, "namedprocess_namegroup_num_procs", &g("sleep")), 2.0);
    assert_eq!(v(&s, fam, cpu_user), 0.57);

    // bash has been empty since t=1015: still there at 1314, gone at 1315 (TTL 300 s)
    *time.lock().expect("clock") = 1_314.0;
    assert!(groups(&collect(&mut c)).contains(&"bash".to_string()));
    *time.lock().expect("clock") = 1_315.0;
    let s = collect(&mut c);
    assert!(!groups(&s).contains(&"bash".to_string()));
    assert_eq!(groups(&s), ["kernel", "process_api", "python3", "sleep"]);
}

/// Processes running at the first reading count only what they consume afterwards
/// (process-exporter's baseline), processes started later count from zero.
#[test]
fn first_reading_is_the_baseline() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&fixture(), dir.path());
    let time: Time = Arc::new(Mutex::new(BTIME + 3600.0));
    let t = time.clone();
    let mut c = ProcessCollector::new(
        &Config::default(),
        &host_at(dir.path()),
        Box::new(move || t.lock().map_or(0.0, |v| *v)),
    );
    let fam = "namedprocess_namegroup_cpu_seconds_total";
    let s = collect(&mut c);
    assert_eq!(
        v(&s, fam, "groupname=\"process_api\",mode=\"system\""),
        0.0,
        "running at the first reading: baseline"
    );
    // the zombie started at btime+3576.65 < first reading: baseline too
    assert_eq!(v(&s, fam, "groupname=\"python3\",mode=\"user\""), 0.0);
    set_stat_field(dir.path(), "1", 15, 1009);
    // a process started after the first reading counts fully
    let p = dir.path().join("proc/40000");
    std::fs::create_dir_all(&p).expect("mkdir");
    copy_tree(&dir.path().join("proc/25141"), &p);
    set_stat_field(dir.path(), "40000", 22, 370_000);
    set_stat_field(dir.path(), "40000", 14, 30);
    *time.lock().expect("clock") = BTIME + 3700.0;
    let s = collect(&mut c);
    assert_eq!(v(&s, fam, "groupname=\"process_api\",mode=\"system\""), 1.0);
    assert_eq!(v(&s, fam, "groupname=\"sleep\",mode=\"user\""), 0.3);
}

#[test]
fn max_groups_overflow_is_counted() {
    let cfg = Config {
        max_groups: 2,
        ..Config::default()
    };
    let (mut c, _) = collector(&cfg, &fixture());
    let s = collect(&mut c);
    assert_eq!(groups(&s), ["kernel", "process_api"]);
    assert_eq!(v(&s, "sonde_process_overflow_procs", ""), 5.0);
}

#[test]
fn threads_families() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&fixture(), dir.path());
    let cfg = Config {
        threads: true,
        ..Config::default()
    };
    let (mut c, time) = collector(&cfg, dir.path());
    let s = collect(&mut c);
    let fam = "namedprocess_namegroup_thread_count";
    assert_eq!(
        v(
            &s,
            fam,
            "groupname=\"process_api\",threadname=\"tokio-rt-worker\""
        ),
        4.0
    );
    assert_eq!(
        v(
            &s,
            fam,
            "groupname=\"process_api\",threadname=\"stop-step\""
        ),
        4.0
    );
    assert_eq!(
        v(
            &s,
            fam,
            "groupname=\"process_api\",threadname=\"vsock-console\""
        ),
        1.0
    );
    // first sighting of a thread contributes nothing (process-exporter)
    let cpu = "namedprocess_namegroup_thread_cpu_seconds_total";
    let user = "groupname=\"process_api\",threadname=\"vsock-console\",mode=\"user\"";
    assert_eq!(v(&s, cpu, user), 0.0);
    // thread 59 burns 0.25 s of user time
    let stat = dir.path().join("proc/1/task/59/stat");
    let text = std::fs::read_to_string(&stat).expect("stat");
    let close = text.rfind(')').expect(")");
    let mut f: Vec<String> = text[close + 2..]
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    let before: u64 = f[11].parse().expect("utime");
    f[11] = (before + 25).to_string();
    std::fs::write(&stat, format!("{} {}\n", &text[..=close], f.join(" "))).expect("write");
    *time.lock().expect("clock") = 1_010.0;
    let s = collect(&mut c);
    assert_eq!(v(&s, cpu, user), 0.25);
    assert_eq!(
        v(
            &s,
            "namedprocess_namegroup_thread_context_switches_total",
            "ctxswitchtype=\"voluntary\",groupname=\"process_api\",threadname=\"tokio-rt-worker\""
        ),
        0.0
    );
}

#[test]
fn config_file_in_process_exporter_format_and_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("pe.yml");
    std::fs::write(
        &file,
        "process_names:\n  - name: \"{{.Comm}}\"\n    cmdline:\n    - '.+'\n",
    )
    .expect("write");
    let cfg = Config {
        config_file: Some(file.clone()),
        kernel_threads: KernelThreads::Include,
        ..Config::default()
    };
    let mut issues = Vec::new();
    cfg.check("collectors.process", &mut issues);
    assert!(issues.is_empty(), "{issues:?}");
    let (mut c, _) = collector(&cfg, &fixture());
    // '.+' does not match the empty cmdline of kthreadd and of the zombie
    let s = collect(&mut c);
    assert_eq!(groups(&s), ["bash", "process_api", "python3", "sleep"]);
    assert_eq!(
        v(&s, "namedprocess_namegroup_num_procs", &g("python3")),
        1.0
    );

    std::fs::write(&file, "process_names:\n  - name: x\n").expect("write");
    let mut issues = Vec::new();
    cfg.check("collectors.process", &mut issues);
    assert_eq!(
        issues,
        [Issue::new(
            "collectors.process.config_file: process_names[0]: no matchers provided (comm, exe or cmdline)",
            "invalid rule"
        )]
    );
    let both = Config {
        process_names: Some(Vec::new()),
        ..cfg.clone()
    };
    let mut issues = Vec::new();
    both.check("collectors.process", &mut issues);
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].key, "collectors.process.config_file");
    let bad = Config {
        group_ttl_seconds: -1.0,
        max_groups: 0,
        ..Config::default()
    };
    let mut issues = Vec::new();
    bad.check("collectors.process", &mut issues);
    let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "collectors.process.group_ttl_seconds",
            "collectors.process.max_groups"
        ]
    );
}

#[test]
fn sonde_yaml_section_parses() {
    let cfg = crate::config::Config::from_yaml_str(
        r#"
collectors:
  process:
    children: false
    kernel_threads: exclude
    group_ttl_seconds: 60
    process_names:
      - name: "{{.Matches.app}}"
        cmdline: ['-jar\s+(?P<app>\S+)\.jar']
"#,
    )
    .expect("config");
    let p = &cfg.collectors.process;
    assert!(!p.children);
    assert_eq!(p.kernel_threads, KernelThreads::Exclude);
    assert_eq!(p.group_ttl_seconds, 60.0);
    assert_eq!(p.process_names.as_ref().map(Vec::len), Some(1));
    let err = crate::config::Config::from_yaml_str(
        "collectors:\n  process:\n    process_names:\n      - cmdline: ['(']\n",
    )
    .expect_err("bad regex");
    assert!(
        err.to_string().contains("collectors.process.process_names"),
        "{err}"
    );
}

#[test]
fn missing_proc_writes_only_empty_families() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut c, _) = collector(&Config::default(), dir.path());
    let s = collect(&mut c);
    let names: Vec<&str> = s.families().map(|f| f.name()).collect();
    assert_eq!(names, ["sonde_process_overflow_procs"]);
}

fn set_status_ctx(root: &Path, pid: &str, voluntary: u64) {
    let path = root.join("proc").join(pid).join("status");
    let text = std::fs::read_to_string(&path).expect("status");
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("voluntary_ctxt_switches:") {
                format!("voluntary_ctxt_switches:\t{voluntary}")
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&path, out.join("\n") + "\n").expect("write");
}

/// A single-threaded process with the same `schedstat` as at the last scrape did not run:
/// its `status` and `io` are not re-read (on a host with swap, `status` is re-read after a
/// minute for `VmSwap`); once it ran, they are.
#[test]
fn idle_processes_skip_status_until_they_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&fixture(), dir.path());
    let (mut c, time) = collector(&Config::default(), dir.path());
    let fam = "namedprocess_namegroup_context_switches_total";
    let bash = "ctxswitchtype=\"voluntary\",groupname=\"bash\"";
    assert_eq!(v(&collect(&mut c), fam, bash), 2.0);
    assert_eq!(v(&collect(&mut c), fam, bash), 2.0); // full read, schedstat remembered
    // status and fds change behind an unchanged schedstat: not read (cannot happen on a real
    // host: the process did not run)
    set_status_ctx(dir.path(), "25138", 10);
    std::fs::write(dir.path().join("proc/25138/fd/9"), "").expect("fd");
    *time.lock().expect("clock") = 1_030.0;
    let s = collect(&mut c);
    assert_eq!(v(&s, fam, bash), 2.0);
    assert_eq!(
        v(&s, "namedprocess_namegroup_open_filedesc", &g("bash")),
        5.0
    );
    // a minute later, on a host with swap (no meminfo here: assumed), status is re-read
    *time.lock().expect("clock") = 1_095.0;
    let s = collect(&mut c);
    assert_eq!(v(&s, fam, bash), 10.0);
    assert_eq!(
        v(&s, "namedprocess_namegroup_open_filedesc", &g("bash")),
        6.0
    );
    // the process ran: schedstat changed, status is re-read
    set_status_ctx(dir.path(), "25138", 15);
    std::fs::write(
        dir.path().join("proc/25138/schedstat"),
        "500000 6759730 3\n",
    )
    .expect("write");
    *time.lock().expect("clock") = 1_100.0;
    assert_eq!(v(&collect(&mut c), fam, bash), 15.0);
    // without swap, an idle process's status is not re-read even after a minute
    std::fs::write(
        dir.path().join("proc/meminfo"),
        "MemTotal: 1 kB\nSwapTotal:       0 kB\n",
    )
    .expect("write");
    *time.lock().expect("clock") = 1_200.0;
    assert_eq!(v(&collect(&mut c), fam, bash), 15.0);
    set_status_ctx(dir.path(), "25138", 20);
    *time.lock().expect("clock") = 1_400.0;
    assert_eq!(v(&collect(&mut c), fam, bash), 15.0);
}

#[test]
fn file_buffer_reads_large_and_non_utf8_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("f");
    std::fs::write(&p, [b'(', b'a', 0xff, b'b', b')']).expect("write");
    let mut b = FileBuf::new();
    assert!(b.read(&p.to_string_lossy()).expect("read"));
    assert_eq!(b.text(), "(a?b)");
    let big = "x".repeat(20_000);
    std::fs::write(&p, &big).expect("write");
    assert!(b.read(&p.to_string_lossy()).expect("read"));
    assert_eq!(b.text().len(), 20_000);
    assert!(
        !b.read(&dir.path().join("nope").to_string_lossy())
            .expect("missing")
    );
    assert_eq!(b.text(), "");
}

/// On the live `/proc`: `stat` and `schedstat` of grouped processes stay open between scrapes;
/// when the process exits and is reaped, the kept files answer ESRCH and the process leaves its
/// group.
#[test]
fn kept_files_on_the_live_proc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let comm = format!("pgu-{}", std::process::id() % 100_000);
    let link = dir.path().join(&comm);
    std::os::unix::fs::symlink("/bin/sleep", &link).expect("symlink");
    let mut child = std::process::Command::new(&link)
        .arg("60")
        .spawn()
        .expect("spawn");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut c = ProcessCollector::new(
        &Config::default(),
        &HostRoot::default(),
        Box::new(wall_clock),
    );
    assert!(c.fd_budget > 0);
    let s = collect(&mut c);
    assert_eq!(v(&s, "namedprocess_namegroup_num_procs", &g(&comm)), 1.0);
    let s = collect(&mut c); // second sighting: files kept
    assert_eq!(v(&s, "namedprocess_namegroup_num_procs", &g(&comm)), 1.0);
    let pid = child.id() as i32;
    let kept = c.procs.get(&pid).expect("tracked");
    assert!(kept.stat_fd.is_some() && kept.sched_fd.is_some());
    assert!(c.fds_open >= 2);
    child.kill().expect("kill");
    child.wait().expect("wait");
    let s = collect(&mut c);
    assert_eq!(v(&s, "namedprocess_namegroup_num_procs", &g(&comm)), 0.0);
    assert!(!c.procs.contains_key(&pid) || c.procs[&pid].stat_fd.is_none());
}

/// Members of a group that expired because they could not be read are matched again when
/// they can be, into a fresh group of the same name.
#[test]
fn unreadable_members_of_an_expired_group_are_matched_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&fixture(), dir.path());
    let (mut c, time) = collector(&Config::default(), dir.path());
    collect(&mut c);
    for pid in ["25141", "25142"] {
        let from = dir.path().join("proc").join(pid).join("status");
        std::fs::rename(&from, from.with_extension("hidden")).expect("hide");
    }
    *time.lock().expect("clock") = 1_400.0;
    assert!(!groups(&collect(&mut c)).contains(&"sleep".to_string()));
    for pid in ["25141", "25142"] {
        let to = dir.path().join("proc").join(pid).join("status");
        std::fs::rename(to.with_extension("hidden"), &to).expect("unhide");
    }
    *time.lock().expect("clock") = 1_410.0;
    let s = collect(&mut c);
    assert_eq!(v(&s, "namedprocess_namegroup_num_procs", &g("sleep")), 2.0);
    assert_eq!(v(&s, "namedprocess_namegroup_num_procs", &g("bash")), 1.0);
}
