//! The validated event type every ingest path (HTTP JSON, StatsD mapping) produces and every
//! service-telemetry computation (request histograms, error budgets, circuit breakers,
//! deprecated calls) consumes. Validation happens once, here: a [`LabelValue`] is length- and
//! charset-limited, so nothing downstream can create an unbounded or unsafe label.

use std::fmt;
use std::time::SystemTime;

/// Limits on label values taken from events (`ingest.max_label_value_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelLimits {
    /// Longest accepted value, in bytes.
    pub max_bytes: usize,
}

impl Default for LabelLimits {
    fn default() -> Self {
        Self { max_bytes: 128 }
    }
}

/// Why a label value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// The value is empty.
    #[error("is empty")]
    Empty,
    /// The value is longer than the configured limit.
    #[error("is longer than {0} bytes")]
    TooLong(usize),
    /// The value holds a character outside `[A-Za-z0-9_.:/{}@-]` (spaces, quotes, control
    /// characters, non-ASCII).
    #[error("contains {0:?}, allowed are letters, digits and _.:/{{}}@-")]
    BadChar(char),
}

/// A label value that passed [`LabelLimits`] and the character rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelValue(Box<str>);

impl LabelValue {
    /// Validates `s`.
    pub fn new(s: &str, limits: LabelLimits) -> Result<Self, LabelError> {
        if s.is_empty() {
            return Err(LabelError::Empty);
        }
        if s.len() > limits.max_bytes {
            return Err(LabelError::TooLong(limits.max_bytes));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "_.:/{}@-".contains(*c)))
        {
            return Err(LabelError::BadChar(c));
        }
        Ok(Self(s.into()))
    }

    /// The value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LabelValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A circuit breaker's state, as in `circuit_breaker_state{state}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// Calls are refused.
    Open,
    /// A few probe calls are let through.
    HalfOpen,
}

impl BreakerState {
    /// Every state, in exposition order.
    pub const ALL: [BreakerState; 3] = [Self::Closed, Self::Open, Self::HalfOpen];

    /// The `state` label value: `closed`, `open`, `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }

    /// Parses a `state` label value.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// How a request ended when no status code is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The request succeeded.
    Success,
    /// The request failed.
    Error,
}

/// A finished request.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestEvent {
    /// The service that served it.
    pub service: LabelValue,
    /// The route (template, not the raw path); capped per service downstream.
    pub route: LabelValue,
    /// The HTTP method or RPC kind.
    pub method: LabelValue,
    /// The status code, when the sender gave one (100..=599).
    pub code: Option<u16>,
    /// The outcome, when the sender gave no code.
    pub outcome: Option<Outcome>,
    /// How long it took, in seconds (finite, >= 0).
    pub duration_seconds: f64,
    /// When it finished, if the sender said; otherwise the time sonde received it.
    pub timestamp: Option<SystemTime>,
}

impl RequestEvent {
    /// The `code` label value: the status code, or `success`/`error` from the outcome.
    pub fn code_label(&self) -> CodeLabel {
        match (self.code, self.outcome) {
            (Some(c), _) => CodeLabel::Code(c),
            (None, Some(Outcome::Error)) => CodeLabel::Error,
            _ => CodeLabel::Success,
        }
    }

    /// True when the request counts as an error: a 5xx code or an `error` outcome.
    pub fn is_error(&self) -> bool {
        match self.code {
            Some(c) => c >= 500,
            None => self.outcome == Some(Outcome::Error),
        }
    }
}

/// The `code` label of request metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CodeLabel {
    /// A status code.
    Code(u16),
    /// No code, outcome success.
    Success,
    /// No code, outcome error.
    Error,
}

/// An error a service reports by itself (counted in `service_errors_total`).
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorEvent {
    /// The service.
    pub service: LabelValue,
    /// What kind of error, if given (not a label: kept out of the series to bound cardinality).
    pub kind: Option<LabelValue>,
    /// When, if the sender said.
    pub timestamp: Option<SystemTime>,
}

/// A state change of a breaker the application runs itself.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerTransitionEvent {
    /// The breaker's name.
    pub breaker: LabelValue,
    /// The state it entered.
    pub state: BreakerState,
}

/// A call of a deprecated function (`deprecated_function_calls_total{function}`).
#[derive(Debug, Clone, PartialEq)]
pub struct DeprecatedCallEvent {
    /// The function.
    pub function: LabelValue,
}

/// One validated event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A finished request.
    Request(RequestEvent),
    /// A service error.
    Error(ErrorEvent),
    /// An application-run breaker changed state.
    BreakerTransition(BreakerTransitionEvent),
    /// A deprecated function was called.
    DeprecatedCall(DeprecatedCallEvent),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_limited() {
        let l = LabelLimits { max_bytes: 8 };
        assert_eq!(
            LabelValue::new("api", l).map(|v| v.to_string()),
            Ok("api".into())
        );
        assert_eq!(
            LabelValue::new("/users/{id}", LabelLimits::default()).map(|v| v.to_string()),
            Ok("/users/{id}".into())
        );
        assert_eq!(LabelValue::new("", l), Err(LabelError::Empty));
        assert_eq!(LabelValue::new("123456789", l), Err(LabelError::TooLong(8)));
        assert_eq!(LabelValue::new("a b", l), Err(LabelError::BadChar(' ')));
        assert_eq!(LabelValue::new("a\"b", l), Err(LabelError::BadChar('"')));
        assert_eq!(LabelValue::new("é", l), Err(LabelError::BadChar('é')));
    }

    #[test]
    fn code_labels_and_errors() {
        let v = |s: &str| LabelValue::new(s, LabelLimits::default()).expect("valid");
        let mut e = RequestEvent {
            service: v("api"),
            route: v("/x"),
            method: v("GET"),
            code: Some(503),
            outcome: None,
            duration_seconds: 0.1,
            timestamp: None,
        };
        assert_eq!(e.code_label(), CodeLabel::Code(503));
        assert!(e.is_error());
        e.code = Some(404);
        assert!(!e.is_error());
        e.code = None;
        e.outcome = Some(Outcome::Error);
        assert_eq!(e.code_label(), CodeLabel::Error);
        assert!(e.is_error());
        e.outcome = None;
        assert_eq!(e.code_label(), CodeLabel::Success);
        assert!(!e.is_error());
        assert_eq!(
            BreakerState::parse("half_open"),
            Some(BreakerState::HalfOpen)
        );
        assert_eq!(BreakerState::parse("halfopen"), None);
    }
}
