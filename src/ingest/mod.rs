//! Transports that application events arrive on; each validates into [`crate::services::event::Event`].

pub mod http;
pub mod statsd;
