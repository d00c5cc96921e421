//! The `sonde` command line: parses flags (node_exporter's names where they exist), loads and
//! validates the configuration, sets up logging, and runs the daemon until SIGTERM or SIGINT.
//! The only place that uses `anyhow`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use sonde::app::App;
use sonde::collect::registry;
use sonde::config::{Config, ConfigError, DEFAULT_CONFIG_YAML, LogFormat};

const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("SONDE_GIT_REVISION"),
    ", rustc ",
    env!("SONDE_RUSTC_VERSION"),
    ")"
);

/// sonde: node, process, container and service metrics for Prometheus, in one small daemon.
///
/// Collectors are switched with --collector.<name> / --no-collector.<name>, as in
/// node_exporter. Without --config the embedded default configuration is used.
#[derive(Debug, Parser)]
#[command(name = "sonde", version = LONG_VERSION, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// YAML configuration file (default: the embedded configuration, see `sonde print-default-config`).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,

    /// Address to listen on: host:port or :port.
    #[arg(long = "web.listen-address", value_name = "ADDRESS")]
    listen_address: Option<String>,

    /// exporter-toolkit web configuration file (TLS, mTLS, basic auth).
    #[arg(long = "web.config.file", value_name = "FILE")]
    web_config_file: Option<PathBuf>,

    /// Path under which to expose metrics.
    #[arg(long = "web.telemetry-path", value_name = "PATH")]
    telemetry_path: Option<String>,

    /// procfs mount point.
    #[arg(long = "path.procfs", value_name = "PATH")]
    procfs: Option<PathBuf>,

    /// sysfs mount point.
    #[arg(long = "path.sysfs", value_name = "PATH")]
    sysfs: Option<PathBuf>,

    /// The host's root filesystem mount point.
    #[arg(long = "path.rootfs", value_name = "PATH")]
    rootfs: Option<PathBuf>,

    /// Directory for durable state (error budgets): services.error_budgets.data_dir.
    #[arg(long = "path.data", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// StatsD UDP address (ingest.statsd.listen_udp); "" disables UDP.
    #[arg(long = "statsd.listen-udp", value_name = "ADDRESS")]
    statsd_udp: Option<String>,

    /// StatsD Unix datagram socket path (ingest.statsd.listen_unixgram).
    #[arg(long = "statsd.listen-unixgram", value_name = "PATH")]
    statsd_unixgram: Option<String>,

    /// statsd_exporter mapping file (ingest.statsd.mapping_file).
    #[arg(long = "statsd.mapping-config", value_name = "FILE")]
    statsd_mapping: Option<PathBuf>,

    /// Directory of *.prom files for the textfile collector.
    #[arg(long = "collector.textfile.directory", value_name = "DIR")]
    textfile_directory: Option<PathBuf>,

    /// Disable every collector; enable the wanted ones with --collector.<name>.
    #[arg(long = "collector.disable-defaults")]
    disable_defaults: bool,

    /// Log filter (error, warn, info, debug, trace or tracing directives); RUST_LOG overrides.
    #[arg(long = "log.level", value_name = "LEVEL")]
    log_level: Option<String>,

    /// Log format: text or json.
    #[arg(long = "log.format", value_name = "FORMAT")]
    log_format: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a configuration file (and the web configuration it names); exit 1 on error.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Print the embedded default configuration (every option, commented).
    PrintDefaultConfig,
}

/// Pulls `--collector.<name>` and `--no-collector.<name>` out of the arguments (clap cannot
/// declare one flag per collector name dynamically).
/// `(collector name, enable)` pairs in command-line order.
type Toggles = Vec<(String, bool)>;

fn split_collector_flags(args: Vec<String>) -> Result<(Vec<String>, Toggles)> {
    let mut rest = Vec::with_capacity(args.len());
    let mut toggles = Vec::new();
    for arg in args {
        let (name, on) = if let Some(n) = arg.strip_prefix("--no-collector.") {
            (n, false)
        } else if let Some(n) = arg.strip_prefix("--collector.") {
            (n, true)
        } else {
            rest.push(arg);
            continue;
        };
        if registry::ALL.contains(&name) {
            toggles.push((name.to_string(), on));
        } else if on && (name.contains('.') || name.contains('=') || name == "disable-defaults") {
            // A collector option such as --collector.textfile.directory: clap's.
            rest.push(arg);
        } else {
            bail!(
                "unknown collector {name:?} in {arg}; known collectors: {}",
                registry::ALL.join(", ")
            );
        }
    }
    Ok((rest, toggles))
}

fn apply_flags(cfg: &mut Config, cli: &Cli, toggles: &[(String, bool)]) -> Result<()> {
    if let Some(v) = &cli.listen_address {
        cfg.web.listen_address = v.clone();
    }
    if let Some(v) = &cli.web_config_file {
        cfg.web.config_file = Some(v.clone());
    }
    if let Some(v) = &cli.telemetry_path {
        cfg.web.telemetry_path = v.clone();
    }
    if let Some(v) = &cli.procfs {
        cfg.paths.procfs = v.clone();
    }
    if let Some(v) = &cli.sysfs {
        cfg.paths.sysfs = v.clone();
    }
    if let Some(v) = &cli.rootfs {
        cfg.paths.rootfs = v.clone();
    }
    if let Some(v) = &cli.data_dir {
        cfg.services.error_budgets.data_dir = v.clone();
    }
    if let Some(v) = &cli.statsd_udp {
        cfg.ingest.statsd.listen_udp = v.clone();
    }
    if let Some(v) = &cli.statsd_unixgram {
        cfg.ingest.statsd.listen_unixgram = v.clone();
    }
    if let Some(v) = &cli.statsd_mapping {
        cfg.ingest.statsd.mapping_file = Some(v.clone());
    }
    if let Some(v) = &cli.textfile_directory {
        cfg.collectors.textfile.directory = Some(v.clone());
    }
    if let Some(v) = &cli.log_level {
        cfg.log.level = v.clone();
    }
    if let Some(v) = &cli.log_format {
        cfg.log.format = match v.as_str() {
            "text" | "logfmt" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => bail!("--log.format: expected text or json, got {other:?}"),
        };
    }
    if cli.disable_defaults {
        cfg.collectors.set_all(false);
    }
    for (name, on) in toggles {
        cfg.collectors.set_enabled(name, *on);
    }
    Ok(())
}

fn init_logging(cfg: &Config) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
        // kube-client logs every failed connection attempt at ERROR; sonde's pod watch reports
        // (rate-limited) and counts them itself.
        .unwrap_or_else(|| {
            tracing_subscriber::EnvFilter::new(format!("{},kube_client=off", cfg.log.level))
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cfg.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn load(path: Option<&PathBuf>) -> Result<Config, ConfigError> {
    match path {
        Some(p) => Config::load(p),
        None => Config::from_yaml_str(DEFAULT_CONFIG_YAML),
    }
}

fn check_config(file: &std::path::Path) -> Result<()> {
    let cfg = Config::load(file).with_context(|| format!("config file {}", file.display()))?;
    if let Some(web) = &cfg.web.config_file {
        sonde::server::web_config::WebSecurity::load(web)
            .with_context(|| format!("web configuration {}", web.display()))?;
    }
    println!(
        "{}: OK ({} collectors enabled: {})",
        file.display(),
        cfg.collectors.enabled().len(),
        cfg.collectors.enabled().join(", ")
    );
    Ok(())
}

/// Resolves on the first SIGTERM or SIGINT. The handlers are installed when this is called (not
/// when the future is first polled), so a signal arriving right after startup is never lost to
/// the default action.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
            _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        }
    })
}

/// Raises the soft open-files limit to the hard one (capped at 65536): the process and cgroup
/// collectors keep per-process files open between scrapes within a budget derived from it.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if let (Some(cur), Some(max)) = (lim.current, lim.maximum) {
        let want = max.min(65_536);
        if cur < want {
            lim.current = Some(want);
            let _ = setrlimit(Resource::Nofile, lim);
        }
    }
}

fn run() -> Result<()> {
    let (args, toggles) = split_collector_flags(std::env::args().collect())?;
    let cli = Cli::parse_from(args);
    match &cli.command {
        Some(Command::CheckConfig { file }) => return check_config(file),
        Some(Command::PrintDefaultConfig) => {
            print!("{DEFAULT_CONFIG_YAML}");
            return Ok(());
        }
        None => {}
    }
    let mut cfg = load(cli.config.as_ref()).with_context(|| match &cli.config {
        Some(p) => format!("config file {}", p.display()),
        None => "embedded configuration".to_string(),
    })?;
    apply_flags(&mut cfg, &cli, &toggles)?;
    cfg.validate()
        .context("invalid configuration after applying command-line flags")?;
    init_logging(&cfg);
    raise_fd_limit();
    let app = App::new(cfg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        .thread_name("sonde")
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let shutdown = shutdown_signal()?;
        app.run(shutdown).await.map_err(anyhow::Error::from)
    })?;
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sonde: {}", sonde::collect::scrape::error_chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
