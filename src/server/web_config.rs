//! The exporter-toolkit web configuration (`--web.config.file`): TLS, mTLS and basic auth.
//! (Implementation in progress.)

use axum::http::HeaderValue;
use tokio_rustls::TlsAcceptor;

/// Why a web configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// Placeholder.
    #[error("{0}")]
    Invalid(String),
}

/// TLS and authentication settings for the HTTP server.
#[derive(Default)]
pub struct WebSecurity {
    tls: Option<TlsAcceptor>,
}

impl WebSecurity {
    /// No TLS, no authentication.
    pub fn none() -> Self {
        Self::default()
    }

    /// Loads a web configuration file.
    pub fn load(_path: &std::path::Path) -> Result<Self, WebConfigError> {
        Err(WebConfigError::Invalid(
            "web configuration files are not supported yet".into(),
        ))
    }

    /// The TLS acceptor, when TLS is configured.
    pub fn tls_acceptor(&self) -> Option<TlsAcceptor> {
        self.tls.clone()
    }

    /// True when the request may proceed.
    pub async fn authorize(&self, _authorization: Option<&HeaderValue>) -> bool {
        true
    }
}
