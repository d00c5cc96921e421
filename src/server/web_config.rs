//! The exporter-toolkit web configuration (`--web.config.file`, the YAML file node_exporter
//! reads): TLS and mTLS through rustls (ring), extra response headers, and HTTP basic auth with
//! bcrypt. Format: exporter-toolkit's `docs/web-configuration.md`; sonde's deviations (rustls
//! has no TLS 1.0/1.1, no RSA key exchange or CBC suites, no P-521 key exchange) are refused
//! with a message naming the key instead of being silently weakened.
//!
//! The file is read once at startup; the certificate and key files are re-read on a handshake
//! when their metadata changed (one `stat` each per handshake), so certificate rotation needs no
//! restart.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderName, HeaderValue};
use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
    SupportedCipherSuite, SupportedProtocolVersion,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// Why a web configuration was refused. Every variant names the key ([`WebConfigError::key`]).
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// The web configuration file itself could not be read.
    #[error("reading the file")]
    ReadConfig {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file named by a key (certificate, key, CA) could not be read.
    #[error("{key}: reading {}", path.display())]
    ReadFile {
        /// The key naming the file, e.g. `tls_server_config.cert_file`.
        key: String,
        /// The file, resolved against the web configuration's directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A value is not acceptable (also YAML syntax and unknown keys).
    #[error("{key}: {reason}")]
    Invalid {
        /// Dotted key path.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl WebConfigError {
    /// The dotted key the error is about (`(file)` when the file could not be read at all).
    pub fn key(&self) -> &str {
        match self {
            Self::ReadConfig { .. } => "(file)",
            Self::ReadFile { key, .. } | Self::Invalid { key, .. } => key,
        }
    }

    fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// The file as written; strings stay strings here so that [`WebSecurity::from_yaml`] can
/// refuse bad values with its own keyed messages.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    tls_server_config: RawTls,
    http_server_config: RawHttp,
    basic_auth_users: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawTls {
    cert_file: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Vec<String>,
    curve_preferences: Vec<String>,
    prefer_server_cipher_suites: Option<bool>,
    client_allowed_sans: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawHttp {
    /// Accepted for compatibility; sonde serves HTTP/1.1 only.
    http2: Option<bool>,
    headers: BTreeMap<String, String>,
}

/// Headers exporter-toolkit lets a web configuration set, with the values allowed (empty: any).
const ALLOWED_HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// How many successful (user, SHA-256(password)) verifications are remembered.
const AUTH_CACHE_ENTRIES: usize = 100;

/// TLS and authentication settings for the HTTP server.
#[derive(Default)]
pub struct WebSecurity {
    tls: Option<TlsAcceptor>,
    headers: Vec<(HeaderName, HeaderValue)>,
    auth: Option<BasicAuth>,
}

impl fmt::Debug for WebSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSecurity")
            .field("tls", &self.tls.is_some())
            .field("headers", &self.headers)
            .field(
                "basic_auth_users",
                &self.auth.as_ref().map_or(0, |a| a.users.len()),
            )
            .finish()
    }
}

impl WebSecurity {
    /// No TLS, no authentication.
    pub fn none() -> Self {
        Self::default()
    }

    /// Loads a web configuration file; relative file names in it are resolved against the
    /// file's directory.
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| WebConfigError::ReadConfig { source })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::from_yaml(&text, dir)
    }

    /// Builds the settings from YAML text, resolving relative file names against `dir`.
    pub fn from_yaml(text: &str, dir: &Path) -> Result<Self, WebConfigError> {
        let raw: RawConfig = crate::config::from_yaml(text).map_err(|e| match e {
            crate::config::ConfigError::Parse { key, message } => {
                WebConfigError::invalid(key, message)
            }
            other => WebConfigError::invalid("(document)", other.to_string()),
        })?;
        let headers = build_headers(&raw.http_server_config.headers)?;
        let auth = BasicAuth::new(&raw.basic_auth_users)?;
        let tls = build_tls(&raw.tls_server_config, dir)?;
        Ok(Self { tls, headers, auth })
    }

    /// The TLS acceptor, when TLS is configured.
    pub fn tls_acceptor(&self) -> Option<TlsAcceptor> {
        self.tls.clone()
    }

    /// Headers to add to every response (`http_server_config.headers`).
    pub fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }

    /// True when basic auth is configured.
    pub fn requires_auth(&self) -> bool {
        self.auth.is_some()
    }

    /// True when the request may proceed: no users configured, or the `Authorization` header
    /// carries a configured user and its password.
    pub async fn authorize(&self, authorization: Option<&HeaderValue>) -> bool {
        match &self.auth {
            None => true,
            Some(auth) => auth.check(authorization).await,
        }
    }

    /// How many bcrypt verifications have run (cache misses), for tests and diagnostics.
    pub fn bcrypt_runs(&self) -> u64 {
        self.auth
            .as_ref()
            .map_or(0, |a| a.bcrypt_runs.load(Ordering::Relaxed))
    }
}

fn build_headers(
    headers: &BTreeMap<String, String>,
) -> Result<Vec<(HeaderName, HeaderValue)>, WebConfigError> {
    let mut out = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let key = format!("http_server_config.headers.{name}");
        let Some((_, allowed)) = ALLOWED_HEADERS.iter().find(|(n, _)| n == name) else {
            let names: Vec<&str> = ALLOWED_HEADERS.iter().map(|(n, _)| *n).collect();
            return Err(WebConfigError::invalid(
                key,
                format!(
                    "header can not be configured; allowed: {}",
                    names.join(", ")
                ),
            ));
        };
        if value.is_empty() {
            // exporter-toolkit: "Unset if blank".
            continue;
        }
        if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
            return Err(WebConfigError::invalid(
                key,
                format!("expected one of {allowed:?}, got {value:?}"),
            ));
        }
        let header_value = HeaderValue::from_str(value)
            .map_err(|_| WebConfigError::invalid(&key, "not a valid header value"))?;
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| WebConfigError::invalid(&key, "not a valid header name"))?;
        out.push((header_name, header_value));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Basic auth

/// Configured users and the cache of successful verifications.
struct BasicAuth {
    /// (user name, bcrypt hash).
    users: Vec<(Vec<u8>, Arc<str>)>,
    /// Verified against when the user is unknown, so that timing does not reveal whether the
    /// user exists: a well-formed hash with the highest configured cost that matches nothing.
    dummy_hash: Arc<str>,
    /// Successful verifications, oldest first: (user index, SHA-256(password)).
    cache: Mutex<VecDeque<(usize, [u8; 32])>>,
    /// bcrypt is CPU-bound by design: bound how many run at once so a flood of wrong passwords
    /// cannot take every blocking thread.
    slots: Arc<Semaphore>,
    bcrypt_runs: AtomicU64,
}

impl BasicAuth {
    fn new(users: &BTreeMap<String, String>) -> Result<Option<Self>, WebConfigError> {
        if users.is_empty() {
            return Ok(None);
        }
        let mut list = Vec::with_capacity(users.len());
        let mut max_cost = 4;
        for (user, hash) in users {
            let key = format!("basic_auth_users.{user}");
            if user.contains(':') {
                // Basic auth splits "user:password" at the first colon: unusable name.
                return Err(WebConfigError::invalid(
                    key,
                    "user names can not contain ':'",
                ));
            }
            let parts: bcrypt::HashParts = hash
                .parse()
                .map_err(|_| WebConfigError::invalid(&key, "not a bcrypt hash"))?;
            max_cost = max_cost.max(parts.get_cost());
            list.push((user.as_bytes().to_vec(), Arc::from(hash.as_str())));
        }
        let slots = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        Ok(Some(Self {
            users: list,
            dummy_hash: Arc::from(dummy_hash(max_cost).as_str()),
            cache: Mutex::new(VecDeque::with_capacity(AUTH_CACHE_ENTRIES)),
            slots: Arc::new(Semaphore::new(slots)),
            bcrypt_runs: AtomicU64::new(0),
        }))
    }

    async fn check(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = authorization.and_then(|h| parse_basic(h.as_bytes())) else {
            return false;
        };
        // Compare against every user in constant time per comparison, so the position and the
        // length of a common prefix do not show in the timing.
        let mut found = None;
        for (i, (name, _)) in self.users.iter().enumerate() {
            if bool::from(name.as_slice().ct_eq(user.as_slice())) {
                found = Some(i);
            }
        }
        let digest: [u8; 32] = Sha256::digest(&password).into();
        if let Some(i) = found
            && self.cached(i, &digest)
        {
            return true;
        }
        let hash = match found {
            Some(i) => self.users[i].1.clone(),
            None => self.dummy_hash.clone(),
        };
        let Ok(permit) = self.slots.clone().acquire_owned().await else {
            return false;
        };
        self.bcrypt_runs.fetch_add(1, Ordering::Relaxed);
        // The permit moves into the blocking task: a client that hangs up does not free the
        // slot before its bcrypt is done.
        let verified = tokio::task::spawn_blocking(move || {
            let ok = bcrypt::verify(&password, &hash).unwrap_or(false);
            drop(permit);
            ok
        })
        .await
        .unwrap_or(false);
        match found {
            Some(i) if verified => {
                self.remember(i, digest);
                true
            }
            _ => false,
        }
    }

    fn cached(&self, user: usize, digest: &[u8; 32]) -> bool {
        let Ok(cache) = self.cache.lock() else {
            return false;
        };
        cache
            .iter()
            .any(|(u, d)| *u == user && bool::from(d.ct_eq(digest)))
    }

    fn remember(&self, user: usize, digest: [u8; 32]) {
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        if cache.iter().any(|(u, d)| *u == user && *d == digest) {
            return;
        }
        if cache.len() >= AUTH_CACHE_ENTRIES {
            cache.pop_front();
        }
        cache.push_back((user, digest));
    }
}

/// A well-formed bcrypt hash of the given cost that no password verifies against.
fn dummy_hash(cost: u32) -> String {
    format!("$2y${cost:02}$zzzzzzzzzzzzzzzzzzzzzu3eZXyAyN/9X3ZHYkqCJ8Z1Ws8r4QKiu")
}

/// Splits `Basic base64(user:password)`; `None` for anything else.
fn parse_basic(header: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let text = std::str::from_utf8(header).ok()?.trim();
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64_decode(encoded.trim())?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

/// Standard base64 (RFC 4648, padding optional) — the only use of base64 in sonde.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes = s.trim_end_matches('=').as_bytes();
    if bytes.len() % 4 == 1 || s.len() - bytes.len() > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        out.push((acc >> 16) as u8);
        if chunk.len() > 2 {
            out.push((acc >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(acc as u8);
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// TLS

const TLS: &str = "tls_server_config";

fn resolve(dir: &Path, file: &str) -> PathBuf {
    let p = Path::new(file);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

fn build_tls(raw: &RawTls, dir: &Path) -> Result<Option<TlsAcceptor>, WebConfigError> {
    let cert_file = non_empty(&raw.cert_file);
    let key_file = non_empty(&raw.key_file);
    let ca_file = non_empty(&raw.client_ca_file);
    let auth_type = non_empty(&raw.client_auth_type);
    // As exporter-toolkit: TLS is on as soon as any of these is set.
    if cert_file.is_none() && key_file.is_none() && ca_file.is_none() && auth_type.is_none() {
        return Ok(None);
    }
    let cert_file =
        cert_file.ok_or_else(|| WebConfigError::invalid(format!("{TLS}.cert_file"), "missing"))?;
    let key_file =
        key_file.ok_or_else(|| WebConfigError::invalid(format!("{TLS}.key_file"), "missing"))?;

    let mut provider = rustls::crypto::ring::default_provider();
    let versions = versions(raw)?;
    if !raw.cipher_suites.is_empty() {
        provider.cipher_suites = cipher_suites(&raw.cipher_suites)?;
    }
    if !raw.curve_preferences.is_empty() {
        provider.kx_groups = curves(&raw.curve_preferences)?;
    }
    let provider = Arc::new(provider);

    let certs = ReloadingCert::new(
        resolve(dir, cert_file),
        resolve(dir, key_file),
        provider.clone(),
    )?;
    let verifier = client_verifier(raw, dir, &provider)?;

    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| WebConfigError::invalid(TLS, e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(certs));
    config.ignore_client_order = raw.prefer_server_cipher_suites.unwrap_or(true);
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

fn version(key: &str, name: &str) -> Result<u8, WebConfigError> {
    match name {
        "TLS12" => Ok(12),
        "TLS13" => Ok(13),
        "TLS10" | "TLS11" => Err(WebConfigError::invalid(
            key,
            format!(
                "{name} is not supported (sonde's TLS library implements TLS12 and TLS13 only)"
            ),
        )),
        other => Err(WebConfigError::invalid(
            key,
            format!("unknown TLS version {other:?} (expected TLS12 or TLS13)"),
        )),
    }
}

fn versions(raw: &RawTls) -> Result<Vec<&'static SupportedProtocolVersion>, WebConfigError> {
    let min_key = format!("{TLS}.min_version");
    let max_key = format!("{TLS}.max_version");
    let min = match non_empty(&raw.min_version) {
        Some(v) => version(&min_key, v)?,
        None => 12,
    };
    let max = match non_empty(&raw.max_version) {
        Some(v) => version(&max_key, v)?,
        None => 13,
    };
    if min > max {
        return Err(WebConfigError::invalid(max_key, "lower than min_version"));
    }
    let mut out = Vec::with_capacity(2);
    if min <= 13 && max >= 13 {
        out.push(&rustls::version::TLS13);
    }
    if min <= 12 && max >= 12 {
        out.push(&rustls::version::TLS12);
    }
    Ok(out)
}

fn cipher_suites(names: &[String]) -> Result<Vec<SupportedCipherSuite>, WebConfigError> {
    use rustls::crypto::ring::cipher_suite as cs;
    let key = format!("{TLS}.cipher_suites");
    // As in Go, the list configures TLS 1.2 only; TLS 1.3 suites stay enabled.
    let mut out: Vec<SupportedCipherSuite> = vec![
        cs::TLS13_AES_128_GCM_SHA256,
        cs::TLS13_AES_256_GCM_SHA384,
        cs::TLS13_CHACHA20_POLY1305_SHA256,
    ];
    for name in names {
        let suite = match name.as_str() {
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => {
                cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            }
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => {
                cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
            }
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
                cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
            }
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
                cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
            }
            "TLS_AES_128_GCM_SHA256"
            | "TLS_AES_256_GCM_SHA384"
            | "TLS_CHACHA20_POLY1305_SHA256" => {
                continue;
            }
            "TLS_RSA_WITH_AES_128_CBC_SHA"
            | "TLS_RSA_WITH_AES_256_CBC_SHA"
            | "TLS_RSA_WITH_AES_128_GCM_SHA256"
            | "TLS_RSA_WITH_AES_256_GCM_SHA384"
            | "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"
            | "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"
            | "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"
            | "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA" => {
                return Err(WebConfigError::invalid(
                    key,
                    format!(
                        "cipher suite {name:?} is not supported (no RSA key exchange and no CBC \
                         suites in sonde's TLS library; use the ECDHE GCM or CHACHA20 suites)"
                    ),
                ));
            }
            other => {
                return Err(WebConfigError::invalid(
                    key,
                    format!("unknown cipher suite {other:?}"),
                ));
            }
        };
        if !out.iter().any(|s| s.suite() == suite.suite()) {
            out.push(suite);
        }
    }
    Ok(out)
}

fn curves(names: &[String]) -> Result<Vec<&'static dyn SupportedKxGroup>, WebConfigError> {
    use rustls::crypto::ring::kx_group;
    let key = format!("{TLS}.curve_preferences");
    let mut out: Vec<&'static dyn SupportedKxGroup> = Vec::with_capacity(names.len());
    for name in names {
        let group = match name.as_str() {
            "X25519" => kx_group::X25519,
            "CurveP256" => kx_group::SECP256R1,
            "CurveP384" => kx_group::SECP384R1,
            "CurveP521" => {
                return Err(WebConfigError::invalid(
                    key,
                    "CurveP521 is not supported by sonde's TLS library (use X25519, CurveP256 or CurveP384)",
                ));
            }
            other => {
                return Err(WebConfigError::invalid(
                    key,
                    format!("unknown curve {other:?}"),
                ));
            }
        };
        if !out.iter().any(|g| g.name() == group.name()) {
            out.push(group);
        }
    }
    Ok(out)
}

/// Client authentication per `client_auth_type` (Go's `tls.ClientAuthType` names).
fn client_verifier(
    raw: &RawTls,
    dir: &Path,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, WebConfigError> {
    let auth_key = format!("{TLS}.client_auth_type");
    let ca_key = format!("{TLS}.client_ca_file");
    let roots = match non_empty(&raw.client_ca_file) {
        Some(file) => Some(Arc::new(read_roots(&ca_key, &resolve(dir, file))?)),
        None => None,
    };
    let auth_type = non_empty(&raw.client_auth_type).unwrap_or("NoClientCert");
    let need_roots = || {
        roots.clone().ok_or_else(|| {
            WebConfigError::invalid(
                &ca_key,
                format!("required with client_auth_type {auth_type} (sonde does not fall back to the system's CAs)"),
            )
        })
    };
    let verifier: Arc<dyn ClientCertVerifier> = match auth_type {
        "NoClientCert" => {
            if roots.is_some() {
                return Err(WebConfigError::invalid(
                    auth_key,
                    "client_ca_file is set but client_auth_type is NoClientCert",
                ));
            }
            WebPkiClientVerifier::no_client_auth()
        }
        "RequestClientCert" => Arc::new(AnyClientCert {
            mandatory: false,
            provider: provider.clone(),
        }),
        "RequireAnyClientCert" | "RequireClientCert" => Arc::new(AnyClientCert {
            mandatory: true,
            provider: provider.clone(),
        }),
        "VerifyClientCertIfGiven" => {
            WebPkiClientVerifier::builder_with_provider(need_roots()?, provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|e| WebConfigError::invalid(&ca_key, e.to_string()))?
        }
        "RequireAndVerifyClientCert" => {
            WebPkiClientVerifier::builder_with_provider(need_roots()?, provider.clone())
                .build()
                .map_err(|e| WebConfigError::invalid(&ca_key, e.to_string()))?
        }
        other => {
            return Err(WebConfigError::invalid(
                auth_key,
                format!(
                    "unknown client auth type {other:?} (expected NoClientCert, RequestClientCert, \
                     RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert)"
                ),
            ));
        }
    };
    if let Some(sans) = &raw.client_allowed_sans {
        let key = format!("{TLS}.client_allowed_sans");
        if !matches!(
            auth_type,
            "RequireAnyClientCert" | "RequireClientCert" | "RequireAndVerifyClientCert"
        ) {
            return Err(WebConfigError::invalid(
                key,
                "requires client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert",
            ));
        }
        return Ok(Arc::new(AllowedSans {
            inner: verifier,
            allowed: sans.clone(),
        }));
    }
    Ok(verifier)
}

fn read_file(key: &str, path: &Path) -> Result<Vec<u8>, WebConfigError> {
    std::fs::read(path).map_err(|source| WebConfigError::ReadFile {
        key: key.to_string(),
        path: path.to_path_buf(),
        source,
    })
}

fn read_certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, WebConfigError> {
    let pem = read_file(key, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| WebConfigError::invalid(key, format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(WebConfigError::invalid(
            key,
            format!("no PEM certificate in {}", path.display()),
        ));
    }
    Ok(certs)
}

fn read_roots(key: &str, path: &Path) -> Result<RootCertStore, WebConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(key, path)? {
        roots
            .add(cert)
            .map_err(|e| WebConfigError::invalid(key, format!("{}: {e}", path.display())))?;
    }
    Ok(roots)
}

fn read_key_pair(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, WebConfigError> {
    let cert_key = format!("{TLS}.cert_file");
    let key_key = format!("{TLS}.key_file");
    let certs = read_certs(&cert_key, cert_path)?;
    let pem = read_file(&key_key, key_path)?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        WebConfigError::invalid(
            &key_key,
            format!("no private key in {}: {e}", key_path.display()),
        )
    })?;
    CertifiedKey::from_der(certs, key, provider).map_err(|e| {
        WebConfigError::invalid(
            &key_key,
            format!("{} does not go with cert_file: {e}", key_path.display()),
        )
    })
}

/// What identifies a version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        ino: m.ino(),
        len: m.size(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
    })
}

/// The server certificate, re-read when its files change.
#[derive(Debug)]
struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    state: Mutex<CertState>,
}

#[derive(Debug)]
struct CertState {
    stamps: (Option<Stamp>, Option<Stamp>),
    current: Arc<CertifiedKey>,
}

impl ReloadingCert {
    fn new(
        cert_path: PathBuf,
        key_path: PathBuf,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, WebConfigError> {
        let stamps = (stamp(&cert_path), stamp(&key_path));
        let current = Arc::new(read_key_pair(&cert_path, &key_path, &provider)?);
        Ok(Self {
            cert_path,
            key_path,
            provider,
            state: Mutex::new(CertState { stamps, current }),
        })
    }

    fn current(&self) -> Option<Arc<CertifiedKey>> {
        let stamps = (stamp(&self.cert_path), stamp(&self.key_path));
        let mut state = self.state.lock().ok()?;
        if state.stamps != stamps {
            // Remember the stamps even when loading fails (a half-written rotation): the next
            // change of either file triggers the next attempt, not every handshake.
            state.stamps = stamps;
            match read_key_pair(&self.cert_path, &self.key_path, &self.provider) {
                Ok(k) => {
                    tracing::info!(cert_file = %self.cert_path.display(), "TLS certificate reloaded");
                    state.current = Arc::new(k);
                }
                Err(e) => tracing::warn!(
                    error = %crate::collect::scrape::error_chain(&e),
                    "TLS certificate not reloaded; still serving the previous one"
                ),
            }
        }
        Some(state.current.clone())
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

/// `RequestClientCert` / `RequireAnyClientCert`: a certificate is asked for (or required)
/// but not verified against any CA; the handshake signature still proves the client holds its
/// key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `client_allowed_sans`: the client certificate must carry one of these subject alternative
/// names (DNS, e-mail, IP or URI; exact string match, as exporter-toolkit).
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let sans = san::names(end_entity.as_ref()).ok_or(rustls::Error::InvalidCertificate(
            rustls::CertificateError::BadEncoding,
        ))?;
        if sans.iter().any(|s| self.allowed.contains(s)) {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Just enough DER to list a certificate's subject alternative names (RFC 5280 4.2.1.6).
mod san {
    /// One TLV: (tag, content, rest).
    fn tlv(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = der.split_first()?;
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let mut len = 0usize;
            for &b in &rest[..n] {
                len = (len << 8) | usize::from(b);
            }
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return None;
        }
        Some((tag, &rest[..len], &rest[len..]))
    }

    const SAN_OID: &[u8] = &[0x55, 0x1d, 0x11];

    /// The certificate's SANs rendered as exporter-toolkit compares them; `None` when the
    /// DER does not parse.
    pub(super) fn names(cert: &[u8]) -> Option<Vec<String>> {
        let (_, certificate, _) = tlv(cert)?;
        let (_, tbs, _) = tlv(certificate)?;
        let mut rest = tbs;
        let mut out = Vec::new();
        while !rest.is_empty() {
            let (tag, content, next) = tlv(rest)?;
            rest = next;
            if tag != 0xa3 {
                continue;
            }
            // [3] EXPLICIT Extensions ::= SEQUENCE OF Extension
            let (_, mut exts, _) = tlv(content)?;
            while !exts.is_empty() {
                let (_, ext, next) = tlv(exts)?;
                exts = next;
                let (_, oid, mut fields) = tlv(ext)?;
                if oid != SAN_OID {
                    continue;
                }
                let (mut tag, mut value, after) = tlv(fields)?;
                if tag == 0x01 {
                    // critical BOOLEAN
                    fields = after;
                    (tag, value, _) = tlv(fields)?;
                }
                if tag != 0x04 {
                    return None;
                }
                let (_, mut general_names, _) = tlv(value)?;
                while !general_names.is_empty() {
                    let (tag, name, next) = tlv(general_names)?;
                    general_names = next;
                    match tag {
                        // rfc822Name, dNSName, uniformResourceIdentifier (IA5String)
                        0x81 | 0x82 | 0x86 => {
                            out.push(String::from_utf8_lossy(name).into_owned());
                        }
                        0x87 => {
                            if let Ok(v4) = <[u8; 4]>::try_from(name) {
                                out.push(std::net::Ipv4Addr::from(v4).to_string());
                            } else if let Ok(v6) = <[u8; 16]>::try_from(name) {
                                out.push(std::net::Ipv6Addr::from(v6).to_string());
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::scrape::error_chain;

    fn err(yaml: &str) -> WebConfigError {
        match WebSecurity::from_yaml(yaml, Path::new("/nonexistent-dir")) {
            Ok(_) => panic!("expected an error for {yaml}"),
            Err(e) => e,
        }
    }

    #[test]
    fn empty_file_means_no_tls_no_auth() {
        let s = WebSecurity::from_yaml("", Path::new(".")).expect("empty");
        assert!(s.tls_acceptor().is_none());
        assert!(!s.requires_auth());
        assert!(s.headers().is_empty());
    }

    #[test]
    fn unknown_keys_are_refused_with_their_path() {
        let e = err("tls_server_config:\n  cert_fil: x\n");
        assert_eq!(e.key(), "tls_server_config.cert_fil");
        let e = err("rate_limit:\n  burst: 3\n");
        assert_eq!(e.key(), "rate_limit");
    }

    #[test]
    fn missing_cert_file_names_key_and_resolved_path() {
        let e = err("tls_server_config:\n  cert_file: y.pem\n  key_file: k.pem\n");
        assert_eq!(e.key(), "tls_server_config.cert_file");
        assert_eq!(
            error_chain(&e),
            "tls_server_config.cert_file: reading /nonexistent-dir/y.pem: No such file or directory (os error 2)"
        );
        let e = err("tls_server_config:\n  cert_file: /x/y.pem\n  key_file: k.pem\n");
        assert!(error_chain(&e).starts_with("tls_server_config.cert_file: reading /x/y.pem: "));
    }

    #[test]
    fn half_configured_tls_is_refused() {
        assert_eq!(
            err("tls_server_config:\n  cert_file: a.pem\n").to_string(),
            "tls_server_config.key_file: missing"
        );
        assert_eq!(
            err("tls_server_config:\n  client_auth_type: RequireAndVerifyClientCert\n").to_string(),
            "tls_server_config.cert_file: missing"
        );
    }

    #[test]
    fn bad_bcrypt_hash_names_the_user() {
        let e = err("basic_auth_users:\n  alice: plaintext\n");
        assert_eq!(e.to_string(), "basic_auth_users.alice: not a bcrypt hash");
        assert_eq!(e.key(), "basic_auth_users.alice");
        let e = err(
            "basic_auth_users:\n  'a:b': $2y$04$zzzzzzzzzzzzzzzzzzzzzu3eZXyAyN/9X3ZHYkqCJ8Z1Ws8r4QKiu\n",
        );
        assert_eq!(e.key(), "basic_auth_users.a:b");
    }

    #[test]
    fn header_rules_follow_exporter_toolkit() {
        let e = err("http_server_config:\n  headers:\n    X-Powered-By: me\n");
        assert_eq!(e.key(), "http_server_config.headers.X-Powered-By");
        let e = err("http_server_config:\n  headers:\n    X-Frame-Options: allow\n");
        assert_eq!(
            e.to_string(),
            "http_server_config.headers.X-Frame-Options: expected one of [\"deny\", \"sameorigin\"], got \"allow\""
        );
        let s = WebSecurity::from_yaml(
            "http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n    Content-Security-Policy: \"default-src 'self'\"\n    X-XSS-Protection: ''\n",
            Path::new("."),
        )
        .expect("valid headers");
        let got: Vec<(String, String)> = s
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("?").to_string()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "content-security-policy".to_string(),
                    "default-src 'self'".to_string()
                ),
                ("x-frame-options".to_string(), "deny".to_string()),
            ]
        );
    }

    /// A directory with a CA, a server certificate and key, for the TLS option tests.
    struct Certs {
        dir: tempfile::TempDir,
    }

    impl Certs {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            let ca_key = rcgen::KeyPair::generate().expect("key");
            let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("p");
            ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            let ca = ca_params.self_signed(&ca_key).expect("ca");
            let issuer = rcgen::Issuer::new(ca_params, ca_key);
            let key = rcgen::KeyPair::generate().expect("key");
            let mut params =
                rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("p");
            params
                .subject_alt_names
                .push(rcgen::SanType::IpAddress(std::net::IpAddr::from([
                    127, 0, 0, 1,
                ])));
            params.subject_alt_names.push(rcgen::SanType::Rfc822Name(
                "ops@example.com".try_into().expect("e"),
            ));
            let cert = params.signed_by(&key, &issuer).expect("cert");
            let write = |name: &str, text: String| {
                std::fs::write(dir.path().join(name), text).expect("write");
            };
            write("ca.pem", ca.pem());
            write("server.pem", cert.pem());
            write("server.key", key.serialize_pem());
            Self { dir }
        }

        fn load(&self, tls_extra: &str) -> Result<WebSecurity, WebConfigError> {
            let yaml = format!(
                "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n{tls_extra}"
            );
            WebSecurity::from_yaml(&yaml, self.dir.path())
        }

        fn err(&self, tls_extra: &str) -> String {
            match self.load(tls_extra) {
                Ok(_) => panic!("expected an error for {tls_extra}"),
                Err(e) => error_chain(&e),
            }
        }
    }

    #[test]
    fn tls_options() {
        let c = Certs::new();
        assert!(c.load("").expect("plain TLS").tls_acceptor().is_some());
        assert!(
            c.load("  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  min_version: TLS13\n  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]\n  curve_preferences: [X25519, CurveP256]\n  prefer_server_cipher_suites: false\n  client_allowed_sans: [client.example]\n")
                .expect("full TLS")
                .tls_acceptor()
                .is_some()
        );
        assert_eq!(
            c.err("  min_version: TLS14\n"),
            "tls_server_config.min_version: unknown TLS version \"TLS14\" (expected TLS12 or TLS13)"
        );
        assert_eq!(
            c.err("  min_version: TLS10\n"),
            "tls_server_config.min_version: TLS10 is not supported (sonde's TLS library implements TLS12 and TLS13 only)"
        );
        assert_eq!(
            c.err("  min_version: TLS13\n  max_version: TLS12\n"),
            "tls_server_config.max_version: lower than min_version"
        );
        assert!(c.err("  client_auth_type: Sometimes\n").starts_with(
            "tls_server_config.client_auth_type: unknown client auth type \"Sometimes\""
        ));
        assert_eq!(
            c.err("  client_ca_file: ca.pem\n"),
            "tls_server_config.client_auth_type: client_ca_file is set but client_auth_type is NoClientCert"
        );
        assert!(
            c.err("  client_auth_type: RequireAndVerifyClientCert\n")
                .starts_with("tls_server_config.client_ca_file: required with client_auth_type RequireAndVerifyClientCert")
        );
        assert!(
            c.err("  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: nope.pem\n")
                .starts_with("tls_server_config.client_ca_file: reading ")
        );
        assert!(
            c.err("  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n")
                .starts_with("tls_server_config.cipher_suites: cipher suite \"TLS_RSA_WITH_AES_128_CBC_SHA\" is not supported")
        );
        assert_eq!(
            c.err("  cipher_suites: [TLS_FAST]\n"),
            "tls_server_config.cipher_suites: unknown cipher suite \"TLS_FAST\""
        );
        assert!(
            c.err("  curve_preferences: [CurveP521]\n")
                .starts_with("tls_server_config.curve_preferences: CurveP521 is not supported")
        );
        assert_eq!(
            c.err("  client_allowed_sans: [a]\n  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.pem\n"),
            "tls_server_config.client_allowed_sans: requires client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert"
        );
    }

    #[test]
    fn bad_key_material_names_the_key() {
        let c = Certs::new();
        std::fs::write(c.dir.path().join("empty.pem"), "nothing here\n").expect("w");
        let load = |yaml: &str| match WebSecurity::from_yaml(yaml, c.dir.path()) {
            Ok(_) => panic!("expected an error for {yaml}"),
            Err(e) => e,
        };
        let e = load("tls_server_config:\n  cert_file: empty.pem\n  key_file: server.key\n");
        assert!(
            e.to_string()
                .starts_with("tls_server_config.cert_file: no PEM certificate in ")
        );
        // The CA's certificate does not go with the server key.
        let e = load("tls_server_config:\n  cert_file: ca.pem\n  key_file: server.key\n");
        assert_eq!(e.key(), "tls_server_config.key_file");
    }

    #[test]
    fn san_names_are_listed() {
        let c = Certs::new();
        let pem = std::fs::read(c.dir.path().join("server.pem")).expect("read");
        let der = CertificateDer::from_pem_slice(&pem).expect("der");
        assert_eq!(
            san::names(der.as_ref()).expect("parse"),
            vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
                "ops@example.com".to_string()
            ]
        );
        assert_eq!(san::names(&der.as_ref()[..40]), None);
    }

    #[test]
    fn base64_and_basic_header() {
        assert_eq!(
            base64_decode("YWxpY2U6czNjcmV0").as_deref(),
            Some(&b"alice:s3cret"[..])
        );
        assert_eq!(base64_decode("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(base64_decode("YQ").as_deref(), Some(&b"a"[..]));
        assert_eq!(base64_decode("Y"), None);
        assert_eq!(base64_decode("YQ*="), None);
        assert_eq!(
            parse_basic(b"basic YWxpY2U6czNjcmV0Oio="),
            Some((b"alice".to_vec(), b"s3cret:*".to_vec()))
        );
        assert_eq!(parse_basic(b"Bearer YWxpY2U6czNjcmV0"), None);
        assert_eq!(parse_basic(b"Basic YWxpY2U="), None);
    }

    #[test]
    fn dummy_hash_is_well_formed_and_matches_nothing() {
        for cost in [4, 10] {
            assert_eq!(bcrypt::verify("", &dummy_hash(cost)).ok(), Some(false));
            assert_eq!(
                dummy_hash(cost)
                    .parse::<bcrypt::HashParts>()
                    .map(|p| p.get_cost())
                    .ok(),
                Some(cost)
            );
        }
    }

    fn header(user: &str, password: &str) -> HeaderValue {
        let raw = format!("{user}:{password}");
        // Tiny encoder for the test only.
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::new();
        for chunk in raw.as_bytes().chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    s.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    s.push('=');
                }
            }
        }
        HeaderValue::from_str(&format!("Basic {s}")).expect("header")
    }

    #[tokio::test]
    async fn basic_auth_verifies_caches_and_spends_time_on_unknown_users() {
        let hash = bcrypt::hash("s3cret", 4).expect("hash");
        let s = WebSecurity::from_yaml(
            &format!("basic_auth_users:\n  alice: {hash}\n  bob: {hash}\n"),
            Path::new("."),
        )
        .expect("users");
        assert!(s.requires_auth());
        assert!(!s.authorize(None).await);
        assert!(
            !s.authorize(Some(&HeaderValue::from_static("Basic !!")))
                .await
        );
        assert_eq!(s.bcrypt_runs(), 0, "malformed headers need no bcrypt");

        assert!(s.authorize(Some(&header("alice", "s3cret"))).await);
        assert_eq!(s.bcrypt_runs(), 1);
        assert!(s.authorize(Some(&header("alice", "s3cret"))).await);
        assert_eq!(s.bcrypt_runs(), 1, "second success comes from the cache");

        assert!(!s.authorize(Some(&header("alice", "wrong"))).await);
        assert_eq!(s.bcrypt_runs(), 2);
        assert!(!s.authorize(Some(&header("mallory", "s3cret"))).await);
        assert_eq!(s.bcrypt_runs(), 3, "unknown users cost a bcrypt too");
        // A cached password of alice does not open bob's account without a verification.
        assert!(s.authorize(Some(&header("bob", "s3cret"))).await);
        assert_eq!(s.bcrypt_runs(), 4);
        assert!(!s.authorize(Some(&header("alic", "s3cret"))).await);
    }

    #[tokio::test]
    async fn cache_is_bounded() {
        let hash = bcrypt::hash("p", 4).expect("hash");
        let s = WebSecurity::from_yaml(
            &format!("basic_auth_users:\n  alice: {hash}\n"),
            Path::new("."),
        )
        .expect("users");
        let Some(auth) = &s.auth else {
            panic!("auth configured")
        };
        for i in 0..(AUTH_CACHE_ENTRIES as u8 + 5) {
            auth.remember(0, [i; 32]);
        }
        let cache = auth.cache.lock().expect("lock");
        assert_eq!(cache.len(), AUTH_CACHE_ENTRIES);
        assert_eq!(cache.front().map(|e| e.1[0]), Some(5));
    }
}
