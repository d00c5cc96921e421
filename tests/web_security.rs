//! End-to-end tests of `--web.config.file`: the real `sonde` binary is started on
//! 127.0.0.1:0 (the bound address is read from its JSON "listening" log line) and queried with
//! curl: TLS with a generated CA, mTLS, client SAN checks, basic auth, extra headers,
//! certificate rotation without restart, and refusal of a bad web configuration.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A running sonde, killed on drop.
struct Daemon {
    child: Child,
    port: u16,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sonde(web_config: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sonde"));
    cmd.args([
        "--web.listen-address",
        "127.0.0.1:0",
        "--log.format",
        "json",
        "--collector.disable-defaults",
        "--statsd.listen-udp=127.0.0.1:0",
        "--web.config.file",
    ])
    .arg(web_config)
    // Its own error-budget store, kept until the test process ends.
    .arg(format!(
        "--path.data={}",
        tempfile::tempdir().expect("data dir").keep().display()
    ))
    .env_remove("RUST_LOG");
    cmd
}

/// The port from a JSON log line `..."address":"127.0.0.1:PORT"...`.
fn listening_port(line: &str) -> Option<u16> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = v.get("fields")?;
    if !fields.get("message")?.as_str()?.ends_with("listening") {
        return None;
    }
    let addr = fields.get("address")?.as_str()?;
    let inner = addr
        .strip_prefix("Some(")
        .and_then(|a| a.strip_suffix(')'))
        .unwrap_or(addr);
    inner.parse::<std::net::SocketAddr>().ok().map(|a| a.port())
}

impl Daemon {
    fn start(web_config: &Path) -> Result<Self> {
        let mut child = sonde(web_config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting sonde")?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().context("stderr")?;
        let (tx, rx) = mpsc::channel();
        let log = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Ok(mut l) = log.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
                if let Some(port) = listening_port(&line) {
                    let _ = tx.send(port);
                }
            }
        });
        let mut daemon = Daemon {
            child,
            port: 0,
            stderr,
        };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(port) => daemon.port = port,
            Err(_) => bail!("sonde did not log its address; stderr:\n{}", daemon.log()),
        }
        Ok(daemon)
    }

    fn log(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }
}

/// What curl saw.
#[derive(Debug)]
struct Reply {
    /// curl's exit code (0 = transfer done, whatever the HTTP status).
    exit: i32,
    status: u16,
    /// Raw header block.
    headers: String,
    body: String,
    stderr: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

fn curl(args: &[&str]) -> Result<Reply> {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10", "--noproxy", "*"])
        .args(args)
        .output()
        .context("running curl")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok(Reply {
        exit: out.status.code().unwrap_or(-1),
        status,
        headers: head.to_string(),
        body: body.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// A CA with a server certificate (localhost, 127.0.0.1) and a client certificate
/// (DNS SAN `client.example`), written as PEM files into `dir` with the given prefix.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn pki(dir: &Path, prefix: &str) -> Result<Pki> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, SanType,
    };
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{prefix} test CA"));
    let ca = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = params.signed_by(&server_key, &issuer)?;

    let client_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["client.example".to_string()])?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = params.signed_by(&client_key, &issuer)?;

    let write = |name: &str, text: String| -> Result<PathBuf> {
        let p = dir.join(format!("{prefix}-{name}"));
        std::fs::write(&p, text)?;
        Ok(p)
    };
    Ok(Pki {
        ca: write("ca.pem", ca.pem())?,
        server_cert: write("server.pem", server.pem())?,
        server_key: write("server.key", server_key.serialize_pem())?,
        client_cert: write("client.pem", client.pem())?,
        client_key: write("client.key", client_key.serialize_pem())?,
    })
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

fn write_config(dir: &Path, yaml: &str) -> Result<PathBuf> {
    let p = dir.join("web.yml");
    std::fs::write(&p, yaml)?;
    Ok(p)
}

/// Writes `yaml` as the web config in `dir` and starts sonde with it.
fn start(dir: &Path, yaml: &str) -> Result<Daemon> {
    Daemon::start(&write_config(dir, yaml)?)
}

/// curl over TLS trusting only `ca`, presenting `client`'s client certificate when given.
fn curl_tls(ca: &Path, client: Option<&Pki>, url: &str) -> Result<Reply> {
    match client {
        Some(c) => curl(&[
            "--cacert",
            s(ca),
            "--cert",
            s(&c.client_cert),
            "--key",
            s(&c.client_key),
            url,
        ]),
        None => curl(&["--cacert", s(ca), url]),
    }
}

#[test]
fn tls_serves_with_the_configured_certificate() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let a = pki(dir.path(), "a")?;
    let other = pki(dir.path(), "other")?;
    // Relative names resolve against the web config's directory, not the working directory.
    let d = start(
        dir.path(),
        "tls_server_config:\n  cert_file: a-server.pem\n  key_file: a-server.key\n  min_version: TLS12\n",
    )?;
    assert!(d.log().contains("\"tls\":true"), "{}", d.log());

    let ok = curl_tls(&a.ca, None, &d.url("https", "/-/healthy"))?;
    assert_eq!(
        (ok.exit, ok.status, ok.body.as_str()),
        (0, 200, "Healthy\n"),
        "{ok:?}"
    );

    let ok13 = curl(&[
        "--tlsv1.3",
        "--cacert",
        s(&a.ca),
        &d.url("https", "/-/healthy"),
    ])?;
    assert_eq!(ok13.status, 200, "{ok13:?}");
    let ok12 = curl(&[
        "--tls-max",
        "1.2",
        "--cacert",
        s(&a.ca),
        &d.url("https", "/-/healthy"),
    ])?;
    assert_eq!(ok12.status, 200, "{ok12:?}");

    // Another CA does not vouch for the server: curl refuses (exit 60).
    let untrusted = curl_tls(&other.ca, None, &d.url("https", "/-/healthy"))?;
    assert_eq!((untrusted.exit, untrusted.status), (60, 0), "{untrusted:?}");
    assert!(
        untrusted.stderr.contains("SSL certificate problem"),
        "{untrusted:?}"
    );
    // Plain HTTP on a TLS port gets no HTTP answer.
    let plain = curl(&[&d.url("http", "/-/healthy")])?;
    assert_ne!(plain.status, 200, "{plain:?}");
    Ok(())
}

#[test]
fn mtls_require_and_verify_with_allowed_sans() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let a = pki(dir.path(), "a")?;
    let other = pki(dir.path(), "other")?;
    let d = start(
        dir.path(),
        &format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: a-ca.pem\n  client_allowed_sans: [client.example]\n",
            s(&a.server_cert),
            s(&a.server_key)
        ),
    )?;
    let url = d.url("https", "/-/healthy");

    let with_cert = curl_tls(&a.ca, Some(&a), &url)?;
    assert_eq!(
        (with_cert.exit, with_cert.status),
        (0, 200),
        "{with_cert:?}"
    );

    let without = curl_tls(&a.ca, None, &url)?;
    assert!(without.exit != 0 && without.status == 0, "{without:?}");

    // Same SAN, but issued by a CA the server does not trust.
    let foreign = curl_tls(&a.ca, Some(&other), &url)?;
    assert!(foreign.exit != 0 && foreign.status == 0, "{foreign:?}");
    Ok(())
}

#[test]
fn client_allowed_sans_rejects_other_names() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let a = pki(dir.path(), "a")?;
    let d = start(
        dir.path(),
        "tls_server_config:\n  cert_file: a-server.pem\n  key_file: a-server.key\n  client_auth_type: RequireAnyClientCert\n  client_allowed_sans: [nobody.example]\n",
    )?;
    let r = curl_tls(&a.ca, Some(&a), &d.url("https", "/-/healthy"))?;
    assert!(r.exit != 0 && r.status == 0, "{r:?}");
    Ok(())
}

#[test]
fn basic_auth_and_headers_on_every_endpoint() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let hash = bcrypt::hash("s3cret", 4)?;
    let d = start(
        dir.path(),
        &format!(
            "http_server_config:\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\nbasic_auth_users:\n  alice: {hash}\n  bob: {hash}\n"
        ),
    )?;

    for path in ["/metrics", "/-/healthy", "/-/ready", "/"] {
        let url = d.url("http", path);
        let ok = curl(&["-u", "alice:s3cret", &url])?;
        assert_eq!(ok.status, 200, "{path}: {ok:?}");
        assert_eq!(ok.header("X-Frame-Options").as_deref(), Some("deny"));
        assert_eq!(
            ok.header("Strict-Transport-Security").as_deref(),
            Some("max-age=31536000")
        );

        let denied = [
            curl(&["-u", "alice:wrong", &url])?,
            curl(&["-u", "mallory:s3cret", &url])?,
            curl(&[&url])?,
            curl(&["-H", "Authorization: Basic !!!", &url])?,
            curl(&["-H", "Authorization: Bearer abc", &url])?,
        ];
        for r in &denied {
            assert_eq!(r.status, 401, "{path}: {r:?}");
            assert_eq!(r.body, "Unauthorized\n", "{path}: {r:?}");
            assert_eq!(r.header("WWW-Authenticate").as_deref(), Some("Basic"));
            assert_eq!(r.header("X-Frame-Options").as_deref(), Some("deny"));
            assert_eq!(
                r.header("content-length"),
                denied[0].header("content-length")
            );
            assert_eq!(r.header("content-type"), denied[0].header("content-type"));
        }
    }
    let ok = curl(&["-u", "bob:s3cret", &d.url("http", "/metrics")])?;
    assert_eq!(ok.status, 200);
    assert!(ok.body.contains("sonde_"), "{}", ok.body);
    Ok(())
}

#[test]
fn certificate_rotation_without_restart() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let a = pki(dir.path(), "a")?;
    let b = pki(dir.path(), "b")?;
    let cert = dir.path().join("live.pem");
    let key = dir.path().join("live.key");
    std::fs::copy(&a.server_cert, &cert)?;
    std::fs::copy(&a.server_key, &key)?;
    let d = start(
        dir.path(),
        "tls_server_config:\n  cert_file: live.pem\n  key_file: live.key\n",
    )?;
    let url = d.url("https", "/-/healthy");
    assert_eq!(curl_tls(&a.ca, None, &url)?.status, 200);
    assert_eq!(curl_tls(&b.ca, None, &url)?.exit, 60);

    // Rotate as cert managers do: write new files, rename them over the old ones.
    let tmp_cert = dir.path().join("live.pem.tmp");
    let tmp_key = dir.path().join("live.key.tmp");
    std::fs::copy(&b.server_cert, &tmp_cert)?;
    std::fs::copy(&b.server_key, &tmp_key)?;
    std::fs::rename(&tmp_cert, &cert)?;
    // A handshake between the two renames sees a mismatched pair: the old one must stay.
    let between = curl_tls(&a.ca, None, &url)?;
    assert_eq!(between.status, 200, "{between:?}\n{}", d.log());
    std::fs::rename(&tmp_key, &key)?;

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = curl_tls(&b.ca, None, &url)?;
        if r.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never served the new cert: {r:?}\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(curl_tls(&a.ca, None, &url)?.exit, 60);
    assert!(d.log().contains("TLS certificate reloaded"), "{}", d.log());
    Ok(())
}

/// Runs sonde with `yaml` as web config and returns (exit code, stderr).
fn refused(dir: &Path, yaml: &str) -> Result<(i32, String)> {
    let cfg = write_config(dir, yaml)?;
    let mut child = sonde(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait()? {
            let out = child.wait_with_output()?;
            return Ok((
                status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("sonde kept running with a bad web config");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts that sonde exits with code 1 on `yaml`, naming the problem (`expected`) on stderr.
fn assert_refused(dir: &Path, yaml: &str, expected: &str) -> Result<()> {
    let (code, stderr) = refused(dir, yaml)?;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(expected), "{stderr}");
    Ok(())
}

#[test]
fn bad_web_config_refuses_to_start_naming_the_key() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("missing.pem");
    assert_refused(
        dir.path(),
        "tls_server_config:\n  cert_file: missing.pem\n  key_file: missing.key\n",
        &format!(
            "tls_server_config.cert_file: reading {}: No such file or directory",
            missing.display()
        ),
    )?;

    assert_refused(
        dir.path(),
        "basic_auth_users:\n  alice: hunter2\n",
        "basic_auth_users.alice: not a bcrypt hash",
    )?;

    assert_refused(
        dir.path(),
        "tls_server_config:\n  min_version: TLS14\n  cert_file: a\n  key_file: b\n",
        "tls_server_config.min_version: unknown TLS version \"TLS14\"",
    )?;

    assert_refused(dir.path(), "basic_auth_user: {}\n", "basic_auth_user")?;
    Ok(())
}

#[test]
fn optional_client_certificates() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let a = pki(dir.path(), "a")?;
    let other = pki(dir.path(), "other")?;
    let with = |d: &Daemon, pki: &Pki| curl_tls(&a.ca, Some(pki), &d.url("https", "/-/healthy"));

    // VerifyClientCertIfGiven: no certificate is fine, a certificate must chain to the CA.
    let d = start(
        dir.path(),
        "tls_server_config:\n  cert_file: a-server.pem\n  key_file: a-server.key\n  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: a-ca.pem\n",
    )?;
    let none = curl_tls(&a.ca, None, &d.url("https", "/-/healthy"))?;
    assert_eq!(none.status, 200, "{none:?}");
    assert_eq!(with(&d, &a)?.status, 200);
    let foreign = with(&d, &other)?;
    assert!(foreign.exit != 0 && foreign.status == 0, "{foreign:?}");
    drop(d);

    // RequestClientCert: asked for, never verified.
    let d = start(
        dir.path(),
        "tls_server_config:\n  cert_file: a-server.pem\n  key_file: a-server.key\n  client_auth_type: RequestClientCert\n",
    )?;
    let none = curl_tls(&a.ca, None, &d.url("https", "/-/healthy"))?;
    assert_eq!(none.status, 200, "{none:?}");
    assert_eq!(with(&d, &other)?.status, 200);
    drop(d);

    // RequireAnyClientCert: any certificate, but one is required.
    let d = start(
        dir.path(),
        "tls_server_config:\n  cert_file: a-server.pem\n  key_file: a-server.key\n  client_auth_type: RequireAnyClientCert\n",
    )?;
    let none = curl_tls(&a.ca, None, &d.url("https", "/-/healthy"))?;
    assert!(none.exit != 0 && none.status == 0, "{none:?}");
    assert_eq!(with(&d, &other)?.status, 200);
    Ok(())
}
