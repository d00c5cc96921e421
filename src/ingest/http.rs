//! HTTP event ingest: `POST /api/v1/events` with a JSON array or NDJSON of typed events
//! (`request`, `error`, `breaker_transition`, `deprecated_call`), validated one by one into
//! [`Event`]s. Owns the body decoder ([`decode_batch`], pure), its limits ([`IngestLimits`]),
//! the axum route ([`routes`]) with bearer-token auth, and the transport's own counters.
//!
//! Wire format (one object per event; field order free):
//!
//! ```text
//! {"type":"request","service":"api","route":"/users/{id}","method":"GET","code":200,"duration_seconds":0.042,"timestamp":"2026-11-23T11:00:00Z"}
//! {"type":"request","service":"api","route":"/login","method":"POST","outcome":"error","duration_seconds":1.5,"timestamp":1795000000.25}
//! {"type":"error","service":"api","kind":"timeout"}
//! {"type":"breaker_transition","breaker":"payments","state":"half_open"}
//! {"type":"deprecated_call","function":"v1_login"}
//! ```
//!
//! Decisions (each a rejection of that one event, with its 0-based index and a short stable
//! reason; the valid rest of the batch is kept):
//! - Fields not defined for the event's type are rejected (`unknown field: x`), so a typo such
//!   as `"duraton_seconds"` cannot silently become a default. A field given twice is rejected.
//!   `timestamp` exists only on `request` and `error` (the other event types carry no time).
//! - A `request` needs exactly one of `code` (integer 100..=599) and `outcome`
//!   (`"success"`/`"error"`): neither would silently count as a success, both are ambiguous.
//!   `null` counts as absent for optional fields (`code`, `outcome`, `kind`, `timestamp`).
//! - `timestamp` is an RFC 3339 string or unix seconds (integer or fraction) between 1970 and
//!   the year 9999. How late or early an event may be is the consumers' business (they clamp
//!   or drop), not the transport's.
//! - In NDJSON every non-blank line is one event (blank lines are skipped and not counted in
//!   indexes); a line that is not valid JSON is one rejection (`invalid JSON`). In a JSON
//!   array, a syntax error breaks the array itself, so the whole body is refused (400) and
//!   nothing is kept; an element that is valid JSON but not a valid event is one rejection.
//! - Events past `max_events_per_batch` are each rejected with `batch too long` (not the whole
//!   batch): a client keeps the accepted prefix and resends the rest, the same way it handles
//!   any other partial success. The body size limit bounds how many there can be.
//! - Responses: 200 with `{"accepted":N,"rejected":M,"errors":[{"index":i,"reason":"..."}]}`
//!   when at least one event was accepted or the batch was empty (partial success is a
//!   success, as Prometheus-ecosystem clients expect); the same body with 400 when every event
//!   was rejected. At most [`MAX_ERRORS`] errors are listed, then `"errors_truncated":true`.
//!   401 (with `WWW-Authenticate: Bearer`, same body whatever was wrong), 413, 415 and a 400
//!   for a broken array carry `{"error":"..."}` only.
//! - Order of checks: token, `Content-Encoding` (only identity), `Content-Type`, declared
//!   `Content-Length`, then the body is read through a length limit (an oversize stream stops
//!   at the limit) and decoded. Decoding a body of at most `max_body_bytes` runs inline on the
//!   request's task: it is one pass over borrowed input (field names matched without
//!   allocation, string values borrowed unless escaped), so it stays short.
//! - The transport's own counters, `sonde_ingest_events_total{transport="http",result}` and
//!   `sonde_ingest_requests_total{code}`, count events only for bodies that could be decoded
//!   (a broken array or a refused request adds to the request counter only).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::collect::{MetricType, Sink};
use crate::config::Issue;
use crate::services::event::{
    BreakerState, BreakerTransitionEvent, DeprecatedCallEvent, ErrorEvent, Event, LabelError,
    LabelLimits, LabelValue, Outcome, RequestEvent,
};

/// Most per-event errors listed in one response; the counts stay exact beyond it.
pub const MAX_ERRORS: usize = 100;

/// Latest accepted numeric timestamp: 9999-12-31T23:59:59Z in unix seconds.
const MAX_UNIX_SECONDS: f64 = 253_402_300_799.0;

/// Longest unknown field name or type echoed back in a reason, in bytes.
const MAX_ECHO_BYTES: usize = 64;

/// Limits of the HTTP ingest (`ingest.http`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestLimits {
    /// Largest request body, in bytes; larger bodies get 413 without being read to the end.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Most events taken from one request; the ones after are rejected (`batch too long`).
    #[serde(default = "default_max_events_per_batch")]
    pub max_events_per_batch: usize,
    /// Longest label value (service, route, method, kind, breaker, function), in bytes.
    #[serde(default = "default_max_label_value_bytes")]
    pub max_label_value_bytes: usize,
}

fn default_max_body_bytes() -> usize {
    1 << 20
}
fn default_max_events_per_batch() -> usize {
    10_000
}
fn default_max_label_value_bytes() -> usize {
    128
}

impl Default for IngestLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: default_max_body_bytes(),
            max_events_per_batch: default_max_events_per_batch(),
            max_label_value_bytes: default_max_label_value_bytes(),
        }
    }
}

impl IngestLimits {
    /// Pushes one [`Issue`] per bad value, keyed below `key` (e.g. `ingest.http`).
    pub fn check(&self, key: &str, issues: &mut Vec<Issue>) {
        if !(1024..=(256 << 20)).contains(&self.max_body_bytes) {
            issues.push(Issue::new(
                format!("{key}.max_body_bytes"),
                "must be between 1024 and 268435456 (256 MiB)",
            ));
        }
        if !(1..=1_000_000).contains(&self.max_events_per_batch) {
            issues.push(Issue::new(
                format!("{key}.max_events_per_batch"),
                "must be between 1 and 1000000",
            ));
        }
        if !(1..=1024).contains(&self.max_label_value_bytes) {
            issues.push(Issue::new(
                format!("{key}.max_label_value_bytes"),
                "must be between 1 and 1024",
            ));
        }
    }

    fn label_limits(&self) -> LabelLimits {
        LabelLimits {
            max_bytes: self.max_label_value_bytes,
        }
    }
}

/// Why a whole request was refused (no event of it is kept). Maps to one response each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// The bearer token is missing or wrong (401; nothing says which).
    #[error("unauthorized")]
    Unauthorized,
    /// The `Content-Type` is neither JSON nor NDJSON, or names a charset other than UTF-8 (415).
    #[error("unsupported content type")]
    UnsupportedMediaType,
    /// The body is compressed or otherwise encoded (415).
    #[error("unsupported content encoding")]
    UnsupportedEncoding,
    /// The body is larger than `max_body_bytes` (413).
    #[error("body too large")]
    TooLarge,
    /// The body ended early or failed while being read (400).
    #[error("could not read body")]
    ReadFailed,
    /// A JSON body is not a syntactically valid array (400); position 1-based as serde_json
    /// reports it.
    #[error("invalid JSON array")]
    Malformed {
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
    },
}

/// One refused event of a batch, as listed in the response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// 0-based position of the event in the batch (NDJSON: among non-blank lines).
    pub index: usize,
    /// Short, stable reason (see the module doc).
    pub reason: String,
}

/// The result of decoding one body: the valid events and what was refused.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchOutcome {
    /// The accepted events, in batch order.
    pub events: Vec<Event>,
    /// How many events were refused.
    pub rejected: usize,
    /// The first [`MAX_ERRORS`] rejections.
    pub errors: Vec<Rejection>,
    /// True when more rejections happened than [`Self::errors`] lists.
    pub errors_truncated: bool,
}

#[derive(Serialize)]
struct ResponseBody<'a> {
    accepted: usize,
    rejected: usize,
    errors: &'a [Rejection],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    errors_truncated: bool,
}

impl BatchOutcome {
    /// How many events were accepted.
    pub fn accepted(&self) -> usize {
        self.events.len()
    }

    /// The response body: `{"accepted":N,"rejected":M,"errors":[...]}` (plus
    /// `"errors_truncated":true` when the list was capped).
    pub fn response_json(&self) -> Vec<u8> {
        let body = ResponseBody {
            accepted: self.accepted(),
            rejected: self.rejected,
            errors: &self.errors,
            errors_truncated: self.errors_truncated,
        };
        serde_json::to_vec(&body).unwrap_or_default()
    }

    fn reject(&mut self, index: usize, reason: Reason<'_>) {
        self.rejected += 1;
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(Rejection {
                index,
                reason: reason.to_string(),
            });
        } else {
            self.errors_truncated = true;
        }
    }

    fn push(&mut self, index: usize, r: Result<Event, Reason<'_>>) {
        match r {
            Ok(ev) => self.events.push(ev),
            Err(reason) => self.reject(index, reason),
        }
    }
}

/// The two body formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// One JSON array of event objects (`application/json`).
    Array,
    /// One event object per line (`application/x-ndjson`, `application/ndjson`).
    Ndjson,
}

/// The body format a `Content-Type` names, or `Ok(None)` when there is none (then the body is
/// sniffed). Parameters other than `charset` are ignored; a charset must be UTF-8.
pub fn body_format(content_type: Option<&str>) -> Result<Option<BodyFormat>, IngestError> {
    let Some(ct) = content_type else {
        return Ok(None);
    };
    let mut parts = ct.split(';');
    let media = parts.next().unwrap_or("").trim();
    let format = if media.eq_ignore_ascii_case("application/json") {
        BodyFormat::Array
    } else if media.eq_ignore_ascii_case("application/x-ndjson")
        || media.eq_ignore_ascii_case("application/ndjson")
    {
        BodyFormat::Ndjson
    } else {
        return Err(IngestError::UnsupportedMediaType);
    };
    for p in parts {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        if k.trim().eq_ignore_ascii_case("charset") {
            let v = v.trim().trim_matches('"');
            if !(v.eq_ignore_ascii_case("utf-8") || v.eq_ignore_ascii_case("utf8")) {
                return Err(IngestError::UnsupportedMediaType);
            }
        }
    }
    Ok(Some(format))
}

/// Decodes and validates one request body.
///
/// `content_type` is the request's `Content-Type`; without one, a body whose first
/// non-whitespace byte is `[` is a JSON array, anything else NDJSON. Whole-body failures
/// (unsupported type, too large, broken array) are errors; everything per event is in the
/// [`BatchOutcome`].
pub fn decode_batch(
    body: &[u8],
    content_type: Option<&str>,
    limits: &IngestLimits,
) -> Result<BatchOutcome, IngestError> {
    let format = body_format(content_type)?;
    if body.len() > limits.max_body_bytes {
        return Err(IngestError::TooLarge);
    }
    let format = format.unwrap_or_else(|| match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => BodyFormat::Array,
        _ => BodyFormat::Ndjson,
    });
    let mut out = BatchOutcome::default();
    match format {
        BodyFormat::Array => decode_array(body, limits, &mut out)?,
        BodyFormat::Ndjson => decode_ndjson(body, limits, &mut out),
    }
    Ok(out)
}

fn decode_array(
    body: &[u8],
    limits: &IngestLimits,
    out: &mut BatchOutcome,
) -> Result<(), IngestError> {
    let malformed = |e: serde_json::Error| IngestError::Malformed {
        line: e.line(),
        column: e.column(),
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    ArraySeed { limits, out }
        .deserialize(&mut de)
        .map_err(malformed)?;
    de.end().map_err(malformed)
}

fn decode_ndjson(body: &[u8], limits: &IngestLimits, out: &mut BatchOutcome) {
    let labels = limits.label_limits();
    let mut index = 0;
    for line in body.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if index >= limits.max_events_per_batch {
            out.reject(index, Reason::BatchTooLong);
        } else {
            match serde_json::from_slice::<RawEvent<'_>>(line) {
                Ok(raw) => out.push(index, raw.validate(labels)),
                Err(_) => out.reject(index, Reason::InvalidJson),
            }
        }
        index += 1;
    }
}

/// Walks a JSON array element by element, so one bad element costs one rejection.
struct ArraySeed<'a> {
    limits: &'a IngestLimits,
    out: &'a mut BatchOutcome,
}

impl<'de> DeserializeSeed<'de> for ArraySeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ArraySeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let labels = self.limits.label_limits();
        let mut index = 0;
        loop {
            if index < self.limits.max_events_per_batch {
                match seq.next_element::<RawEvent<'de>>()? {
                    Some(raw) => self.out.push(index, raw.validate(labels)),
                    None => return Ok(()),
                }
            } else {
                match seq.next_element::<IgnoredAny>()? {
                    Some(_) => self.out.reject(index, Reason::BatchTooLong),
                    None => return Ok(()),
                }
            }
            index += 1;
        }
    }
}

/// Why one event was refused. Rendered (allocating) only for the listed errors.
#[derive(Debug)]
enum Reason<'a> {
    InvalidJson,
    NotObject,
    BatchTooLong,
    Duplicate(Field),
    Unknown(Cow<'a, str>),
    UnknownType(Cow<'a, str>),
    Missing(Field),
    NotString(Field),
    Label(Field, LabelError),
    Code,
    Outcome,
    CodeAndOutcome,
    NoCodeNorOutcome,
    Duration,
    Timestamp,
    State,
}

/// At most [`MAX_ECHO_BYTES`] of `s`, cut on a character boundary.
fn echo(s: &str) -> &str {
    if s.len() <= MAX_ECHO_BYTES {
        return s;
    }
    let mut end = MAX_ECHO_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidJson => f.write_str("invalid JSON"),
            Self::NotObject => f.write_str("not a JSON object"),
            Self::BatchTooLong => f.write_str("batch too long"),
            Self::Duplicate(field) => write!(f, "duplicate field: {}", field.name()),
            Self::Unknown(name) => write!(f, "unknown field: {}", echo(name)),
            Self::UnknownType(t) => write!(f, "unknown type: {}", echo(t)),
            Self::Missing(field) => write!(f, "missing field: {}", field.name()),
            Self::NotString(field) => write!(f, "{}: must be a string", field.name()),
            Self::Label(field, e) => write!(f, "{}: {e}", field.name()),
            Self::Code => f.write_str("code: must be an integer in 100..=599"),
            Self::Outcome => f.write_str("outcome: must be \"success\" or \"error\""),
            Self::CodeAndOutcome => f.write_str("code and outcome are mutually exclusive"),
            Self::NoCodeNorOutcome => f.write_str("one of code or outcome is required"),
            Self::Duration => f.write_str("duration_seconds: must be a finite number >= 0"),
            Self::Timestamp => f.write_str(
                "timestamp: must be an RFC 3339 string or unix seconds (years 1970 to 9999)",
            ),
            Self::State => f.write_str("state: must be \"open\", \"half_open\" or \"closed\""),
        }
    }
}

/// Every field any event type has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Type,
    Service,
    Route,
    Method,
    Code,
    Outcome,
    DurationSeconds,
    Timestamp,
    Kind,
    Breaker,
    State,
    Function,
}

const FIELDS: usize = 12;

impl Field {
    const ALL: [Field; FIELDS] = [
        Self::Type,
        Self::Service,
        Self::Route,
        Self::Method,
        Self::Code,
        Self::Outcome,
        Self::DurationSeconds,
        Self::Timestamp,
        Self::Kind,
        Self::Breaker,
        Self::State,
        Self::Function,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Type => "type",
            Self::Service => "service",
            Self::Route => "route",
            Self::Method => "method",
            Self::Code => "code",
            Self::Outcome => "outcome",
            Self::DurationSeconds => "duration_seconds",
            Self::Timestamp => "timestamp",
            Self::Kind => "kind",
            Self::Breaker => "breaker",
            Self::State => "state",
            Self::Function => "function",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == s)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A field value as it came, type-checked later so a wrong type is one rejection.
#[derive(Debug)]
enum Loose<'a> {
    Str(Cow<'a, str>),
    U64(u64),
    I64(i64),
    F64(f64),
    Null,
    /// A bool, object or array: never valid for any field.
    Other,
}

impl<'a> Loose<'a> {
    fn number(&self) -> Option<f64> {
        match *self {
            Self::U64(v) => Some(v as f64),
            Self::I64(v) => Some(v as f64),
            Self::F64(v) => Some(v),
            _ => None,
        }
    }
}

struct LooseVisitor;

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = Loose<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Loose::Other)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Loose::U64(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Loose::I64(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Loose::F64(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Owned(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Loose::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Loose::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Loose::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Loose::Other)
    }
}

impl<'de> Deserialize<'de> for Loose<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LooseVisitor)
    }
}

/// An object key: a known field (no allocation) or an unknown name.
enum Key<'a> {
    Known(Field),
    Unknown(Cow<'a, str>),
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Field::parse(v).map_or(Key::Unknown(Cow::Borrowed(v)), Key::Known))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Field::parse(v).map_or_else(|| Key::Unknown(Cow::Owned(v.to_owned())), Key::Known))
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

/// One array element or NDJSON line before validation. Deserialising it fails only on JSON
/// syntax; everything else is recorded and judged by [`RawEvent::validate`].
#[derive(Debug, Default)]
struct RawEvent<'a> {
    fields: [Option<Loose<'a>>; FIELDS],
    not_object: bool,
    duplicate: Option<Field>,
    unknown: Option<Cow<'a, str>>,
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawEvent<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut raw = RawEvent::default();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match key {
                Key::Known(field) => {
                    let value = map.next_value::<Loose<'de>>()?;
                    let slot = &mut raw.fields[field as usize];
                    if slot.is_some() {
                        raw.duplicate.get_or_insert(field);
                    } else {
                        *slot = Some(value);
                    }
                }
                Key::Unknown(name) => {
                    map.next_value::<IgnoredAny>()?;
                    raw.unknown.get_or_insert(name);
                }
            }
        }
        Ok(raw)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(RawEvent::not_object())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(RawEvent::not_object())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(RawEvent::not_object())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(RawEvent::not_object())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(RawEvent::not_object())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(RawEvent::not_object())
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(RawEvent::not_object())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(RawEvent::not_object())
    }
}

impl<'de> Deserialize<'de> for RawEvent<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

/// The four event types.
#[derive(Debug, Clone, Copy)]
enum EventKind {
    Request,
    Error,
    Breaker,
    Deprecated,
}

/// Which fields each event type may carry (besides `type`).
const REQUEST_FIELDS: [Field; 7] = [
    Field::Service,
    Field::Route,
    Field::Method,
    Field::Code,
    Field::Outcome,
    Field::DurationSeconds,
    Field::Timestamp,
];
const ERROR_FIELDS: [Field; 3] = [Field::Service, Field::Kind, Field::Timestamp];
const BREAKER_FIELDS: [Field; 2] = [Field::Breaker, Field::State];
const DEPRECATED_FIELDS: [Field; 1] = [Field::Function];

impl<'a> RawEvent<'a> {
    fn not_object() -> Self {
        Self {
            not_object: true,
            ..Self::default()
        }
    }

    fn get(&self, f: Field) -> Option<&Loose<'a>> {
        self.fields[f as usize].as_ref()
    }

    /// The value unless absent or `null`.
    fn get_opt(&self, f: Field) -> Option<&Loose<'a>> {
        self.get(f).filter(|v| !matches!(v, Loose::Null))
    }

    fn label(&self, f: Field, limits: LabelLimits) -> Result<LabelValue, Reason<'a>> {
        match self.get(f) {
            None => Err(Reason::Missing(f)),
            Some(Loose::Str(s)) => LabelValue::new(s, limits).map_err(|e| Reason::Label(f, e)),
            Some(_) => Err(Reason::NotString(f)),
        }
    }

    fn opt_label(&self, f: Field, limits: LabelLimits) -> Result<Option<LabelValue>, Reason<'a>> {
        match self.get_opt(f) {
            None => Ok(None),
            Some(_) => self.label(f, limits).map(Some),
        }
    }

    fn timestamp(&self) -> Result<Option<SystemTime>, Reason<'a>> {
        let Some(v) = self.get_opt(Field::Timestamp) else {
            return Ok(None);
        };
        let t = match v {
            Loose::Str(s) => s
                .parse::<jiff::Timestamp>()
                .ok()
                .filter(|t| t.as_second() >= 0)
                .map(SystemTime::from),
            Loose::U64(secs) if (*secs as f64) <= MAX_UNIX_SECONDS => {
                Some(SystemTime::UNIX_EPOCH + Duration::from_secs(*secs))
            }
            Loose::F64(secs) if (0.0..=MAX_UNIX_SECONDS).contains(secs) => {
                Duration::try_from_secs_f64(*secs)
                    .ok()
                    .map(|d| SystemTime::UNIX_EPOCH + d)
            }
            _ => None,
        };
        t.map(Some).ok_or(Reason::Timestamp)
    }

    /// Turns the raw object into an event, or says why not (first problem found: not an
    /// object, duplicate, type, unknown field, then the fields in wire-format order).
    fn validate(self, limits: LabelLimits) -> Result<Event, Reason<'a>> {
        if self.not_object {
            return Err(Reason::NotObject);
        }
        if let Some(f) = self.duplicate {
            return Err(Reason::Duplicate(f));
        }
        let ty = match self.get(Field::Type) {
            None => return Err(Reason::Missing(Field::Type)),
            Some(Loose::Str(s)) => s,
            Some(_) => return Err(Reason::NotString(Field::Type)),
        };
        let (kind, allowed): (EventKind, &[Field]) = match ty.as_ref() {
            "request" => (EventKind::Request, &REQUEST_FIELDS),
            "error" => (EventKind::Error, &ERROR_FIELDS),
            "breaker_transition" => (EventKind::Breaker, &BREAKER_FIELDS),
            "deprecated_call" => (EventKind::Deprecated, &DEPRECATED_FIELDS),
            _ => return Err(Reason::UnknownType(ty.clone())),
        };
        if let Some(name) = self.unknown {
            return Err(Reason::Unknown(name));
        }
        let mask = allowed.iter().fold(Field::Type.bit(), |m, f| m | f.bit());
        if let Some(f) = Field::ALL
            .into_iter()
            .find(|f| mask & f.bit() == 0 && self.get(*f).is_some())
        {
            return Err(Reason::Unknown(Cow::Borrowed(f.name())));
        }
        match kind {
            EventKind::Request => self.request(limits),
            EventKind::Error => Ok(Event::Error(ErrorEvent {
                service: self.label(Field::Service, limits)?,
                kind: self.opt_label(Field::Kind, limits)?,
                timestamp: self.timestamp()?,
            })),
            EventKind::Breaker => Ok(Event::BreakerTransition(BreakerTransitionEvent {
                breaker: self.label(Field::Breaker, limits)?,
                state: match self.get(Field::State) {
                    None => return Err(Reason::Missing(Field::State)),
                    Some(Loose::Str(s)) => BreakerState::parse(s).ok_or(Reason::State)?,
                    Some(_) => return Err(Reason::State),
                },
            })),
            EventKind::Deprecated => Ok(Event::DeprecatedCall(DeprecatedCallEvent {
                function: self.label(Field::Function, limits)?,
            })),
        }
    }

    fn request(&self, limits: LabelLimits) -> Result<Event, Reason<'a>> {
        let service = self.label(Field::Service, limits)?;
        let route = self.label(Field::Route, limits)?;
        let method = self.label(Field::Method, limits)?;
        let code = match self.get_opt(Field::Code) {
            None => None,
            Some(Loose::U64(c)) if (100..=599).contains(c) => Some(*c as u16),
            Some(_) => return Err(Reason::Code),
        };
        let outcome = match self.get_opt(Field::Outcome) {
            None => None,
            Some(Loose::Str(s)) if s == "success" => Some(Outcome::Success),
            Some(Loose::Str(s)) if s == "error" => Some(Outcome::Error),
            Some(_) => return Err(Reason::Outcome),
        };
        match (code, outcome) {
            (Some(_), Some(_)) => return Err(Reason::CodeAndOutcome),
            (None, None) => return Err(Reason::NoCodeNorOutcome),
            _ => {}
        }
        let duration_seconds = match self.get(Field::DurationSeconds) {
            None => return Err(Reason::Missing(Field::DurationSeconds)),
            Some(v) => v
                .number()
                .filter(|d| d.is_finite() && *d >= 0.0)
                .ok_or(Reason::Duration)?,
        };
        Ok(Event::Request(RequestEvent {
            service,
            route,
            method,
            code,
            outcome,
            duration_seconds,
            timestamp: self.timestamp()?,
        }))
    }
}

/// The path events are posted to.
pub const EVENTS_PATH: &str = "/api/v1/events";

/// Where accepted events go (the services hub). Called once per request that accepted at
/// least one event, with the events in batch order and the time the request was handled.
pub trait EventSink: Send + Sync {
    /// Takes a batch of validated events.
    fn submit(&self, events: Vec<Event>, now: SystemTime);
}

/// Every status code the handler answers with, as counted in `sonde_ingest_requests_total`.
const CODES: [(StatusCode, &str); 5] = [
    (StatusCode::OK, "200"),
    (StatusCode::BAD_REQUEST, "400"),
    (StatusCode::UNAUTHORIZED, "401"),
    (StatusCode::PAYLOAD_TOO_LARGE, "413"),
    (StatusCode::UNSUPPORTED_MEDIA_TYPE, "415"),
];

impl IngestError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::UnsupportedMediaType | Self::UnsupportedEncoding => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::ReadFailed | Self::Malformed { .. } => StatusCode::BAD_REQUEST,
        }
    }
}

#[derive(Serialize)]
struct ErrorBody {
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<usize>,
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let (line, column) = match self {
            Self::Malformed { line, column } => (Some(line), Some(column)),
            _ => (None, None),
        };
        let body = ErrorBody {
            error: self.to_string(),
            line,
            column,
        };
        let mut r = json_response(self.status(), serde_json::to_vec(&body).unwrap_or_default());
        if self == Self::Unauthorized {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The HTTP ingest endpoint's state: limits, the optional token, the event sink and the
/// transport's own counters.
pub struct HttpIngest {
    limits: IngestLimits,
    /// SHA-256 of the configured token: comparing fixed-size digests in constant time hides
    /// the token's length as well as its content.
    token_digest: Option<[u8; 32]>,
    sink: Arc<dyn EventSink>,
    clock: fn() -> SystemTime,
    accepted: AtomicU64,
    rejected: AtomicU64,
    requests: [AtomicU64; CODES.len()],
}

impl fmt::Debug for HttpIngest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpIngest")
            .field("limits", &self.limits)
            .field("token", &self.token_digest.map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl HttpIngest {
    /// An endpoint with `limits`, requiring `Authorization: Bearer <token>` when `token` is
    /// set (an empty token refuses every request), handing accepted events to `sink`.
    pub fn new(limits: IngestLimits, token: Option<String>, sink: Arc<dyn EventSink>) -> Self {
        Self {
            limits,
            token_digest: token.map(|t| Sha256::digest(t.as_bytes()).into()),
            sink,
            clock: SystemTime::now,
            accepted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            requests: Default::default(),
        }
    }

    /// Replaces the clock whose time is passed to [`EventSink::submit`] (for tests).
    pub fn with_clock(mut self, clock: fn() -> SystemTime) -> Self {
        self.clock = clock;
        self
    }

    /// Writes `sonde_ingest_events_total{transport="http",result}` and
    /// `sonde_ingest_requests_total{code}` (every code the endpoint can answer, from 0).
    pub fn encode(&self, sink: &mut Sink) {
        sink.family(
            "sonde_ingest_events_total",
            "Events received by the ingest transports, by transport and result (rejected: invalid or over a limit).",
            MetricType::Counter,
        )
        .sample(
            &[("transport", "http"), ("result", "accepted")],
            self.accepted.load(Ordering::Relaxed) as f64,
        )
        .sample(
            &[("transport", "http"), ("result", "rejected")],
            self.rejected.load(Ordering::Relaxed) as f64,
        );
        let mut f = sink.family(
            "sonde_ingest_requests_total",
            "Requests to the HTTP event ingest endpoint, by response status code.",
            MetricType::Counter,
        );
        for ((_, code), n) in CODES.iter().zip(&self.requests) {
            f.sample(&[("code", code)], n.load(Ordering::Relaxed) as f64);
        }
    }

    fn count(&self, status: StatusCode) {
        if let Some(i) = CODES.iter().position(|(c, _)| *c == status) {
            self.requests[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(want) = &self.token_digest else {
            return true;
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim_matches(' '))
            .filter(|token| !token.is_empty());
        let Some(token) = presented else {
            return false;
        };
        let got: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        bool::from(got.ct_eq(want))
    }

    /// Everything up to and including decoding; no event is kept on error.
    async fn receive(&self, headers: &HeaderMap, body: Body) -> Result<BatchOutcome, IngestError> {
        if !self.authorized(headers) {
            return Err(IngestError::Unauthorized);
        }
        if let Some(enc) = headers.get(header::CONTENT_ENCODING)
            && !enc.as_bytes().eq_ignore_ascii_case(b"identity")
        {
            return Err(IngestError::UnsupportedEncoding);
        }
        let content_type = match headers.get(header::CONTENT_TYPE) {
            None => None,
            Some(v) => Some(v.to_str().map_err(|_| IngestError::UnsupportedMediaType)?),
        };
        body_format(content_type)?;
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.limits.max_body_bytes as u64) {
            return Err(IngestError::TooLarge);
        }
        let bytes = Limited::new(body, self.limits.max_body_bytes)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<LengthLimitError>() {
                    IngestError::TooLarge
                } else {
                    IngestError::ReadFailed
                }
            })?
            .to_bytes();
        decode_batch(&bytes, content_type, &self.limits)
    }
}

/// The router serving `POST /api/v1/events` (other methods get 405 from axum).
pub fn routes(state: Arc<HttpIngest>) -> Router {
    Router::new()
        .route(EVENTS_PATH, post(post_events))
        .with_state(state)
}

async fn post_events(
    State(st): State<Arc<HttpIngest>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match st.receive(&headers, body).await {
        Ok(mut outcome) => {
            let accepted = outcome.accepted();
            st.accepted.fetch_add(accepted as u64, Ordering::Relaxed);
            st.rejected
                .fetch_add(outcome.rejected as u64, Ordering::Relaxed);
            let json = outcome.response_json();
            if accepted > 0 {
                st.sink
                    .submit(std::mem::take(&mut outcome.events), (st.clock)());
            }
            let status = if accepted == 0 && outcome.rejected > 0 {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            st.count(status);
            json_response(status, json)
        }
        Err(e) => {
            st.count(e.status());
            e.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED_JSON: &str = include_str!("../../tests/fixtures/ingest/mixed.json");
    const MIXED_NDJSON: &str = include_str!("../../tests/fixtures/ingest/mixed.ndjson");

    fn lv(s: &str) -> LabelValue {
        LabelValue::new(s, LabelLimits::default()).expect("valid label")
    }

    fn at(secs: f64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs)
    }

    fn rej(index: usize, reason: &str) -> Rejection {
        Rejection {
            index,
            reason: reason.to_string(),
        }
    }

    fn decode(body: &str, ct: Option<&str>) -> BatchOutcome {
        decode_batch(body.as_bytes(), ct, &IngestLimits::default()).expect("decodes")
    }

    /// The accepted events of `mixed.json`, shared with the router tests.
    pub(crate) fn mixed_json_events() -> Vec<Event> {
        vec![
            Event::Request(RequestEvent {
                service: lv("api"),
                route: lv("/users/{id}"),
                method: lv("GET"),
                code: Some(200),
                outcome: None,
                duration_seconds: 0.042,
                timestamp: Some(at(1_795_431_600.0)),
            }),
            Event::Request(RequestEvent {
                service: lv("api"),
                route: lv("/login"),
                method: lv("POST"),
                code: None,
                outcome: Some(Outcome::Error),
                duration_seconds: 1.5,
                timestamp: Some(at(1_795_000_000.25)),
            }),
            Event::Error(ErrorEvent {
                service: lv("worker"),
                kind: Some(lv("timeout")),
                timestamp: None,
            }),
            Event::BreakerTransition(BreakerTransitionEvent {
                breaker: lv("payments"),
                state: BreakerState::HalfOpen,
            }),
            Event::DeprecatedCall(DeprecatedCallEvent {
                function: lv("v1_login"),
            }),
            Event::Error(ErrorEvent {
                service: lv("api"),
                kind: None,
                timestamp: Some(SystemTime::UNIX_EPOCH),
            }),
        ]
    }

    fn mixed_ndjson_events() -> Vec<Event> {
        vec![
            Event::Request(RequestEvent {
                service: lv("api"),
                route: lv("/users/{id}"),
                method: lv("GET"),
                code: Some(503),
                outcome: None,
                duration_seconds: 2.0,
                timestamp: None,
            }),
            Event::BreakerTransition(BreakerTransitionEvent {
                breaker: lv("payments"),
                state: BreakerState::Open,
            }),
            Event::DeprecatedCall(DeprecatedCallEvent {
                function: lv("v1_login"),
            }),
        ]
    }

    pub(crate) const MIXED_JSON_RESPONSE: &str = concat!(
        r#"{"accepted":6,"rejected":9,"errors":["#,
        r#"{"index":2,"reason":"code and outcome are mutually exclusive"},"#,
        r#"{"index":4,"reason":"service: contains ' ', allowed are letters, digits and _.:/{}@-"},"#,
        r#"{"index":6,"reason":"code: must be an integer in 100..=599"},"#,
        r#"{"index":8,"reason":"duration_seconds: must be a finite number >= 0"},"#,
        r#"{"index":9,"reason":"unknown type: metric"},"#,
        r#"{"index":10,"reason":"timestamp: must be an RFC 3339 string or unix seconds (years 1970 to 9999)"},"#,
        r#"{"index":11,"reason":"unknown field: duraton_seconds"},"#,
        r#"{"index":12,"reason":"not a JSON object"},"#,
        r#"{"index":13,"reason":"state: must be \"open\", \"half_open\" or \"closed\""}]}"#
    );

    #[test]
    fn mixed_array_keeps_the_valid_events() {
        for ct in [
            Some("application/json"),
            Some("Application/JSON; charset=UTF-8"),
            None,
        ] {
            let out = decode(MIXED_JSON, ct);
            assert_eq!(out.events, mixed_json_events(), "{ct:?}");
            assert_eq!(out.rejected, 9);
            assert!(!out.errors_truncated);
            assert_eq!(
                String::from_utf8(out.response_json()).expect("utf-8"),
                MIXED_JSON_RESPONSE
            );
        }
    }

    #[test]
    fn ndjson_lines_are_events_and_blank_lines_are_skipped() {
        for ct in [
            Some("application/x-ndjson"),
            Some("application/ndjson"),
            None,
        ] {
            let out = decode(MIXED_NDJSON, ct);
            assert_eq!(out.events, mixed_ndjson_events(), "{ct:?}");
            assert_eq!(
                out.errors,
                vec![
                    rej(1, "invalid JSON"),
                    rej(2, "duplicate field: function"),
                    rej(4, "one of code or outcome is required"),
                ]
            );
            assert_eq!(out.rejected, 3);
        }
    }

    #[test]
    fn field_rules() {
        let one = |line: &str| {
            let out = decode(line, Some("application/x-ndjson"));
            assert_eq!(out.accepted() + out.rejected, 1, "{line}");
            out.errors.first().map(|e| e.reason.clone())
        };
        let ok = None;
        let r = |s: &str| Some(s.to_string());
        let req = r#""type":"request","service":"api","route":"/","method":"GET""#;
        assert_eq!(
            one(&format!(r#"{{{req},"code":100,"duration_seconds":0}}"#)),
            ok
        );
        assert_eq!(
            one(&format!(r#"{{{req},"code":599,"duration_seconds":1e3}}"#)),
            ok
        );
        assert_eq!(
            one(&format!(r#"{{{req},"code":99,"duration_seconds":0}}"#)),
            r("code: must be an integer in 100..=599")
        );
        assert_eq!(
            one(&format!(r#"{{{req},"code":200.0,"duration_seconds":0}}"#)),
            r("code: must be an integer in 100..=599")
        );
        assert_eq!(
            one(&format!(r#"{{{req},"code":"200","duration_seconds":0}}"#)),
            r("code: must be an integer in 100..=599")
        );
        assert_eq!(
            one(&format!(
                r#"{{{req},"code":null,"outcome":"success","duration_seconds":0}}"#
            )),
            ok
        );
        assert_eq!(
            one(&format!(
                r#"{{{req},"outcome":"fail","duration_seconds":0}}"#
            )),
            r(r#"outcome: must be "success" or "error""#)
        );
        assert_eq!(
            one(&format!(r#"{{{req},"code":200}}"#)),
            r("missing field: duration_seconds")
        );
        assert_eq!(
            one(&format!(r#"{{{req},"code":200,"duration_seconds":"1"}}"#)),
            r("duration_seconds: must be a finite number >= 0")
        );
        assert_eq!(
            one(&format!(r#"{{{req},"code":200,"duration_seconds":-1}}"#)),
            r("duration_seconds: must be a finite number >= 0")
        );
        assert_eq!(
            one(&format!(
                r#"{{{req},"code":200,"duration_seconds":1,"timestamp":-1}}"#
            )),
            r("timestamp: must be an RFC 3339 string or unix seconds (years 1970 to 9999)")
        );
        assert_eq!(
            one(&format!(
                r#"{{{req},"code":200,"duration_seconds":1,"timestamp":253402300800}}"#
            )),
            r("timestamp: must be an RFC 3339 string or unix seconds (years 1970 to 9999)")
        );
        assert_eq!(
            one(&format!(
                r#"{{{req},"code":200,"duration_seconds":1,"timestamp":"1969-12-31T23:59:59Z"}}"#
            )),
            r("timestamp: must be an RFC 3339 string or unix seconds (years 1970 to 9999)")
        );
        assert_eq!(
            one(r#"{"type":"request","route":"/","method":"GET","code":200,"duration_seconds":1}"#),
            r("missing field: service")
        );
        assert_eq!(
            one(r#"{"type":"error","service":7}"#),
            r("service: must be a string")
        );
        assert_eq!(
            one(r#"{"type":"error","service":""}"#),
            r("service: is empty")
        );
        assert_eq!(
            one(r#"{"type":"error","service":"api","kind":"connection reset"}"#),
            r("kind: contains ' ', allowed are letters, digits and _.:/{}@-")
        );
        assert_eq!(
            one(r#"{"type":"error","service":"caf\u00e9"}"#),
            r("service: contains 'é', allowed are letters, digits and _.:/{}@-")
        );
        assert_eq!(one(r#"{"service":"api"}"#), r("missing field: type"));
        assert_eq!(one(r#"{"type":1}"#), r("type: must be a string"));
        assert_eq!(
            one(r#"{"type":"error","service":"api","route":"/"}"#),
            r("unknown field: route")
        );
        assert_eq!(
            one(r#"{"type":"breaker_transition","breaker":"b","state":"open","timestamp":1}"#),
            r("unknown field: timestamp")
        );
        assert_eq!(
            one(r#"{"type":"breaker_transition","breaker":"b"}"#),
            r("missing field: state")
        );
        assert_eq!(
            one(r#"{"type":"breaker_transition","breaker":"b","state":["open"]}"#),
            r(r#"state: must be "open", "half_open" or "closed""#)
        );
        assert_eq!(
            one(r#"{"type":"deprecated_call","function":"f","extra":{"a":[1,2]}}"#),
            r("unknown field: extra")
        );
        assert_eq!(
            one(r#"{"type":"deprecated_call","function":"f"} {}"#),
            r("invalid JSON")
        );
        assert_eq!(one("[1]"), r("not a JSON object"));
        let long = "x".repeat(200);
        assert_eq!(
            one(&format!(r#"{{"type":"{long}"}}"#)),
            Some(format!("unknown type: {}", &long[..64]))
        );
    }

    #[test]
    fn timestamps_in_both_forms() {
        let out = decode(
            concat!(
                r#"{"type":"error","service":"a","timestamp":"2026-11-23T12:00:00.5+01:00"}"#,
                "\n",
                r#"{"type":"error","service":"a","timestamp":1795431600}"#,
            ),
            None,
        );
        let ts: Vec<_> = out
            .events
            .iter()
            .map(|e| match e {
                Event::Error(e) => e.timestamp,
                _ => None,
            })
            .collect();
        assert_eq!(
            ts,
            vec![Some(at(1_795_431_600.5)), Some(at(1_795_431_600.0))]
        );
    }

    #[test]
    fn label_length_limit_is_configurable() {
        let limits = IngestLimits {
            max_label_value_bytes: 4,
            ..IngestLimits::default()
        };
        let out = decode_batch(
            br#"[{"type":"deprecated_call","function":"abcd"},{"type":"deprecated_call","function":"abcde"}]"#,
            None,
            &limits,
        )
        .expect("decodes");
        assert_eq!(
            out.events,
            vec![Event::DeprecatedCall(DeprecatedCallEvent {
                function: lv("abcd")
            })]
        );
        assert_eq!(out.errors, vec![rej(1, "function: is longer than 4 bytes")]);
    }

    #[test]
    fn events_past_the_batch_limit_are_rejected() {
        let limits = IngestLimits {
            max_events_per_batch: 2,
            ..IngestLimits::default()
        };
        let ev = r#"{"type":"deprecated_call","function":"f"}"#;
        let arr = format!("[{ev},{ev},{ev},[{{}}]]");
        let nd = format!("{ev}\n{ev}\n\n{ev}\nnot json\n");
        for (body, ct) in [(arr, "application/json"), (nd, "application/x-ndjson")] {
            let out = decode_batch(body.as_bytes(), Some(ct), &limits).expect("decodes");
            assert_eq!(out.accepted(), 2, "{ct}");
            assert_eq!(
                out.errors,
                vec![rej(2, "batch too long"), rej(3, "batch too long")]
            );
        }
    }

    #[test]
    fn errors_list_is_capped_but_counts_are_exact() {
        let mut body = String::from("[");
        for i in 0..150 {
            if i > 0 {
                body.push(',');
            }
            body.push_str(if i == 149 {
                r#"{"type":"deprecated_call","function":"f"}"#
            } else {
                "{}"
            });
        }
        body.push(']');
        let out = decode(&body, None);
        assert_eq!(out.accepted(), 1);
        assert_eq!(out.rejected, 149);
        assert_eq!(out.errors.len(), MAX_ERRORS);
        assert_eq!(out.errors[99], rej(99, "missing field: type"));
        assert!(out.errors_truncated);
        let json = String::from_utf8(out.response_json()).expect("utf-8");
        assert!(json.starts_with(r#"{"accepted":1,"rejected":149,"errors":[{"index":0,"#));
        assert!(
            json.ends_with(
                r#"{"index":99,"reason":"missing field: type"}],"errors_truncated":true}"#
            )
        );
    }

    #[test]
    fn whole_body_failures() {
        let l = IngestLimits::default();
        assert_eq!(
            decode_batch(b"[{\"type\":\"error\"},\n{", None, &l),
            Err(IngestError::Malformed { line: 2, column: 1 })
        );
        assert_eq!(
            decode_batch(
                br#"{"type":"error","service":"a"}"#,
                Some("application/json"),
                &l
            ),
            Err(IngestError::Malformed { line: 1, column: 0 })
        );
        assert_eq!(
            decode_batch(b"[] []", None, &l),
            Err(IngestError::Malformed { line: 1, column: 4 })
        );
        assert_eq!(
            decode_batch(b"[]", Some("text/plain"), &l),
            Err(IngestError::UnsupportedMediaType)
        );
        assert_eq!(
            decode_batch(b"[]", Some("application/json; charset=latin1"), &l),
            Err(IngestError::UnsupportedMediaType)
        );
        let small = IngestLimits {
            max_body_bytes: 4,
            ..IngestLimits::default()
        };
        assert_eq!(
            decode_batch(b"[   ]", None, &small),
            Err(IngestError::TooLarge)
        );
        for empty in ["[]", " [ ] ", "", "\n\n"] {
            assert_eq!(decode(empty, None), BatchOutcome::default(), "{empty:?}");
        }
    }

    #[test]
    fn limits_config() {
        let l: IngestLimits = crate::config::from_yaml("max_body_bytes: 2048\n").expect("parses");
        assert_eq!(
            l,
            IngestLimits {
                max_body_bytes: 2048,
                ..IngestLimits::default()
            }
        );
        assert!(crate::config::from_yaml::<IngestLimits>("max_events: 3\n").is_err());
        let mut issues = Vec::new();
        IngestLimits::default().check("ingest.http", &mut issues);
        assert!(issues.is_empty());
        IngestLimits {
            max_body_bytes: 10,
            max_events_per_batch: 0,
            max_label_value_bytes: 0,
        }
        .check("ingest.http", &mut issues);
        let keys: Vec<_> = issues.iter().map(|i| i.to_string()).collect();
        assert_eq!(
            keys,
            vec![
                "ingest.http.max_body_bytes: must be between 1024 and 268435456 (256 MiB)",
                "ingest.http.max_events_per_batch: must be between 1 and 1000000",
                "ingest.http.max_label_value_bytes: must be between 1 and 1024",
            ]
        );
    }

    // ---- through the real router ----

    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    use axum::http::{Method, Request};
    use tower::ServiceExt as _;

    const NOW_SECS: u64 = 1_795_432_000;

    fn fixed_now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_SECS)
    }

    /// Records every submitted batch.
    #[derive(Default)]
    struct Collect(Mutex<Vec<(Vec<Event>, SystemTime)>>);

    impl EventSink for Collect {
        fn submit(&self, events: Vec<Event>, now: SystemTime) {
            self.0.lock().expect("not poisoned").push((events, now));
        }
    }

    impl Collect {
        fn batches(&self) -> Vec<(Vec<Event>, SystemTime)> {
            self.0.lock().expect("not poisoned").clone()
        }
    }

    struct Setup {
        ingest: Arc<HttpIngest>,
        collected: Arc<Collect>,
    }

    fn setup(limits: IngestLimits, token: Option<&str>) -> Setup {
        let collected = Arc::new(Collect::default());
        let ingest = Arc::new(
            HttpIngest::new(limits, token.map(str::to_string), collected.clone())
                .with_clock(fixed_now),
        );
        Setup { ingest, collected }
    }

    struct Reply {
        status: StatusCode,
        headers: HeaderMap,
        body: String,
    }

    async fn call(st: &Setup, req: Request<Body>) -> Reply {
        let resp = routes(st.ingest.clone())
            .oneshot(req)
            .await
            .expect("infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).expect("utf-8"),
        }
    }

    fn post(ct: Option<&str>, body: impl Into<Body>) -> Request<Body> {
        let mut b = Request::builder().method(Method::POST).uri(EVENTS_PATH);
        if let Some(ct) = ct {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        b.body(body.into()).expect("request")
    }

    fn with_header(mut req: Request<Body>, name: header::HeaderName, v: &str) -> Request<Body> {
        req.headers_mut()
            .insert(name, HeaderValue::from_str(v).expect("header value"));
        req
    }

    fn metrics(ingest: &HttpIngest) -> String {
        let mut sink = Sink::new();
        ingest.encode(&mut sink);
        let mut out = Vec::new();
        crate::expo::encode([&sink], crate::expo::Format::Text, &mut out);
        String::from_utf8(out).expect("utf-8")
    }

    const EV: &str = r#"{"type":"deprecated_call","function":"f"}"#;

    fn deprecated(f: &str) -> Event {
        Event::DeprecatedCall(DeprecatedCallEvent { function: lv(f) })
    }

    #[tokio::test]
    async fn router_mixed_array_partial_success() {
        let st = setup(IngestLimits::default(), None);
        let r = call(&st, post(Some("application/json"), MIXED_JSON)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(r.body, MIXED_JSON_RESPONSE);
        assert_eq!(
            st.collected.batches(),
            vec![(mixed_json_events(), fixed_now())]
        );
    }

    #[tokio::test]
    async fn router_ndjson_and_sniffing() {
        let st = setup(IngestLimits::default(), None);
        let want = concat!(
            r#"{"accepted":3,"rejected":3,"errors":["#,
            r#"{"index":1,"reason":"invalid JSON"},"#,
            r#"{"index":2,"reason":"duplicate field: function"},"#,
            r#"{"index":4,"reason":"one of code or outcome is required"}]}"#
        );
        for ct in [Some("application/x-ndjson"), None] {
            let r = call(&st, post(ct, MIXED_NDJSON)).await;
            assert_eq!(
                (r.status, r.body.as_str()),
                (StatusCode::OK, want),
                "{ct:?}"
            );
        }
        assert_eq!(
            st.collected.batches(),
            vec![
                (mixed_ndjson_events(), fixed_now()),
                (mixed_ndjson_events(), fixed_now())
            ]
        );
    }

    #[tokio::test]
    async fn router_all_rejected_is_400_and_empty_is_200() {
        let st = setup(IngestLimits::default(), None);
        let r = call(&st, post(None, r#"[{"type":"nope"},{}]"#)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            r.body,
            r#"{"accepted":0,"rejected":2,"errors":[{"index":0,"reason":"unknown type: nope"},{"index":1,"reason":"missing field: type"}]}"#
        );
        let r = call(&st, post(Some("application/json"), "[]")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body, r#"{"accepted":0,"rejected":0,"errors":[]}"#);
        let r = call(&st, post(None, "")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body, r#"{"accepted":0,"rejected":0,"errors":[]}"#);
        assert_eq!(st.collected.batches(), vec![]);
    }

    #[tokio::test]
    async fn router_broken_array_keeps_nothing() {
        let st = setup(IngestLimits::default(), None);
        let r = call(&st, post(None, format!("[{EV},\n{EV},\n{{\"type\""))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            r.body,
            r#"{"error":"invalid JSON array","line":3,"column":7}"#
        );
        assert_eq!(st.collected.batches(), vec![]);
    }

    #[tokio::test]
    async fn router_limits() {
        let limits = IngestLimits {
            max_body_bytes: 1024,
            max_events_per_batch: 2,
            max_label_value_bytes: 8,
        };
        let st = setup(limits, None);
        let too_large = r#"{"error":"body too large"}"#;
        // Declared too large: refused before reading.
        let big = format!("[{}]", vec![EV; 30].join(","));
        assert!(big.len() > 1024);
        let r = call(&st, post(Some("application/json"), big.clone())).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, too_large)
        );
        // Streamed without a length: reading stops at the limit, the rest is never polled.
        let polled = Arc::new(AtomicUsize::new(0));
        let p = polled.clone();
        let chunks = futures_util::stream::iter((0..1000).map(move |_| {
            p.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(vec![b' '; 512])
        }));
        let r = call(&st, post(None, Body::from_stream(chunks))).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, too_large)
        );
        assert_eq!(polled.load(Ordering::SeqCst), 3);
        // Batch length, label length and characters.
        let body = format!(
            "{EV}\n{}\n{}\n{EV}\n",
            r#"{"type":"deprecated_call","function":"abcdefghi"}"#,
            r#"{"type":"deprecated_call","function":"a\"b"}"#
        );
        let r = call(&st, post(Some("application/x-ndjson"), body)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            r.body,
            concat!(
                r#"{"accepted":1,"rejected":3,"errors":["#,
                r#"{"index":1,"reason":"function: is longer than 8 bytes"},"#,
                r#"{"index":2,"reason":"batch too long"},"#,
                r#"{"index":3,"reason":"batch too long"}]}"#
            )
        );
        let r = call(
            &st,
            post(None, r#"[{"type":"deprecated_call","function":"a b"},{"type":"deprecated_call","function":"ok"}]"#),
        )
        .await;
        assert_eq!(
            r.body,
            r#"{"accepted":1,"rejected":1,"errors":[{"index":0,"reason":"function: contains ' ', allowed are letters, digits and _.:/{}@-"}]}"#
        );
        assert_eq!(
            st.collected.batches(),
            vec![
                (vec![deprecated("f")], fixed_now()),
                (vec![deprecated("ok")], fixed_now())
            ]
        );
    }

    #[tokio::test]
    async fn router_bearer_token() {
        let st = setup(IngestLimits::default(), Some("s3cret-token"));
        let ok = call(
            &st,
            with_header(post(None, EV), header::AUTHORIZATION, "Bearer s3cret-token"),
        )
        .await;
        assert_eq!(ok.status, StatusCode::OK);
        assert_eq!(ok.body, r#"{"accepted":1,"rejected":0,"errors":[]}"#);
        let ok = call(
            &st,
            with_header(
                post(None, EV),
                header::AUTHORIZATION,
                "bearer  s3cret-token",
            ),
        )
        .await;
        assert_eq!(ok.status, StatusCode::OK);
        let mut refused = Vec::new();
        for auth in [
            None,
            Some("Bearer s3cret-tokeN"),
            Some("Bearer s3cret-token2"),
            Some("Bearer "),
            Some("Basic s3cret-token"),
            Some("s3cret-token"),
        ] {
            let mut req = post(None, EV);
            if let Some(a) = auth {
                req = with_header(req, header::AUTHORIZATION, a);
            }
            let r = call(&st, req).await;
            refused.push((
                r.status,
                r.headers.get(header::WWW_AUTHENTICATE).cloned(),
                r.body,
            ));
        }
        let want = (
            StatusCode::UNAUTHORIZED,
            Some(HeaderValue::from_static("Bearer")),
            r#"{"error":"unauthorized"}"#.to_string(),
        );
        assert_eq!(refused, vec![want; 6]);
        assert_eq!(
            st.collected.batches(),
            vec![
                (vec![deprecated("f")], fixed_now()),
                (vec![deprecated("f")], fixed_now())
            ]
        );
        // An empty configured token lets nothing through.
        let st = setup(IngestLimits::default(), Some(""));
        let r = call(
            &st,
            with_header(post(None, EV), header::AUTHORIZATION, "Bearer "),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn router_content_types_and_methods() {
        let st = setup(IngestLimits::default(), None);
        let unsupported = r#"{"error":"unsupported content type"}"#;
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/json; charset=iso-8859-1",
        ] {
            let r = call(&st, post(Some(ct), format!("[{EV}]"))).await;
            assert_eq!(
                (r.status, r.body.as_str()),
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, unsupported),
                "{ct}"
            );
        }
        let r = call(
            &st,
            with_header(
                post(None, format!("[{EV}]")),
                header::CONTENT_ENCODING,
                "gzip",
            ),
        )
        .await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                r#"{"error":"unsupported content encoding"}"#
            )
        );
        // NDJSON sent as application/json is not an array.
        let r = call(&st, post(Some("application/json"), format!("{EV}\n{EV}\n"))).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (
                StatusCode::BAD_REQUEST,
                r#"{"error":"invalid JSON array","line":1,"column":0}"#
            )
        );
        let get = Request::builder()
            .uri(EVENTS_PATH)
            .body(Body::empty())
            .expect("request");
        assert_eq!(call(&st, get).await.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(st.collected.batches(), vec![]);
    }

    #[tokio::test]
    async fn router_counters() {
        let st = setup(IngestLimits::default(), Some("t"));
        let auth = |req| with_header(req, header::AUTHORIZATION, "Bearer t");
        assert_eq!(
            metrics(&st.ingest),
            concat!(
                "# HELP sonde_ingest_events_total Events received by the ingest transports, by transport and result (rejected: invalid or over a limit).\n",
                "# TYPE sonde_ingest_events_total counter\n",
                "sonde_ingest_events_total{transport=\"http\",result=\"accepted\"} 0\n",
                "sonde_ingest_events_total{transport=\"http\",result=\"rejected\"} 0\n",
                "# HELP sonde_ingest_requests_total Requests to the HTTP event ingest endpoint, by response status code.\n",
                "# TYPE sonde_ingest_requests_total counter\n",
                "sonde_ingest_requests_total{code=\"200\"} 0\n",
                "sonde_ingest_requests_total{code=\"400\"} 0\n",
                "sonde_ingest_requests_total{code=\"401\"} 0\n",
                "sonde_ingest_requests_total{code=\"413\"} 0\n",
                "sonde_ingest_requests_total{code=\"415\"} 0\n",
            )
        );
        call(&st, auth(post(None, MIXED_JSON))).await; // 200: 6 accepted, 9 rejected
        call(&st, auth(post(None, MIXED_NDJSON))).await; // 200: 3 + 3
        call(&st, auth(post(None, "[{}]"))).await; // 400: 0 + 1
        call(&st, auth(post(None, "[{"))).await; // 400, no events counted
        call(&st, post(None, "[]")).await; // 401
        call(&st, auth(post(Some("text/csv"), "a,b"))).await; // 415
        let huge = " ".repeat((1 << 20) + 1);
        call(&st, auth(post(None, huge))).await; // 413
        assert_eq!(
            metrics(&st.ingest),
            concat!(
                "# HELP sonde_ingest_events_total Events received by the ingest transports, by transport and result (rejected: invalid or over a limit).\n",
                "# TYPE sonde_ingest_events_total counter\n",
                "sonde_ingest_events_total{transport=\"http\",result=\"accepted\"} 9\n",
                "sonde_ingest_events_total{transport=\"http\",result=\"rejected\"} 13\n",
                "# HELP sonde_ingest_requests_total Requests to the HTTP event ingest endpoint, by response status code.\n",
                "# TYPE sonde_ingest_requests_total counter\n",
                "sonde_ingest_requests_total{code=\"200\"} 2\n",
                "sonde_ingest_requests_total{code=\"400\"} 2\n",
                "sonde_ingest_requests_total{code=\"401\"} 1\n",
                "sonde_ingest_requests_total{code=\"413\"} 1\n",
                "sonde_ingest_requests_total{code=\"415\"} 1\n",
            )
        );
    }

    // ---- properties ----

    use proptest::prelude::*;
    use serde_json::Value;

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (0u64..700).prop_map(Value::from),
            (-10.0f64..3e11).prop_map(Value::from),
            prop::sample::select(vec![
                "api",
                "/users/{id}",
                "GET",
                "open",
                "half_open",
                "closed",
                "success",
                "error",
                "request",
                "a b",
                "",
                "é",
                "2026-11-23T11:00:00Z",
                "2026-13-01T00:00:00Z",
            ])
            .prop_map(Value::from),
            "[ -~]{0,12}".prop_map(Value::from),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,3}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A field's value: mostly valid for that field, sometimes anything.
    fn field_value(name: &'static str) -> BoxedStrategy<Option<(&'static str, Value)>> {
        let good: BoxedStrategy<Value> = match name {
            "code" => (100u64..600).prop_map(Value::from).boxed(),
            "outcome" => prop::sample::select(vec!["success", "error"])
                .prop_map(Value::from)
                .boxed(),
            "duration_seconds" => (0.0f64..10.0).prop_map(Value::from).boxed(),
            "timestamp" => prop_oneof![
                (0u64..2_000_000_000).prop_map(Value::from),
                Just(Value::from("2026-11-23T11:00:00.5+01:00")),
            ]
            .boxed(),
            "state" => prop::sample::select(vec!["open", "half_open", "closed"])
                .prop_map(Value::from)
                .boxed(),
            _ => "[a-z/{}_.:-]{1,8}".prop_map(Value::from).boxed(),
        };
        let present = if matches!(name, "code" | "outcome") {
            0.5
        } else {
            0.9
        };
        prop::option::weighted(present, prop_oneof![6 => good, 1 => leaf()])
            .prop_map(move |v| v.map(|v| (name, v)))
            .boxed()
    }

    /// Mostly event-shaped objects (each type with its own fields, values mostly valid,
    /// sometimes a foreign field), sometimes any JSON value.
    fn element() -> impl Strategy<Value = Value> {
        let typed = prop::sample::select(vec![
            (
                "request",
                vec![
                    "service",
                    "route",
                    "method",
                    "code",
                    "outcome",
                    "duration_seconds",
                    "timestamp",
                ],
            ),
            ("error", vec!["service", "kind", "timestamp"]),
            ("breaker_transition", vec!["breaker", "state"]),
            ("deprecated_call", vec!["function"]),
            ("other", vec!["service"]),
        ])
        .prop_flat_map(|(ty, fields)| {
            let mut fs: Vec<_> = fields.into_iter().map(field_value).collect();
            fs.push(
                prop::option::weighted(
                    0.1,
                    (
                        prop::sample::select(vec!["extra", "route", "state"]),
                        leaf(),
                    ),
                )
                .boxed(),
            );
            (Just(ty), fs)
        })
        .prop_map(|(ty, fs)| {
            let mut obj = serde_json::Map::new();
            obj.insert("type".into(), Value::from(ty));
            for (k, v) in fs.into_iter().flatten() {
                obj.insert(k.into(), v);
            }
            Value::Object(obj)
        });
        prop_oneof![6 => typed, 1 => value()]
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            body in prop::collection::vec(any::<u8>(), 0..600),
            ct in prop::sample::select(vec![None, Some("application/json"), Some("application/x-ndjson")]),
        ) {
            if let Ok(out) = decode_batch(&body, ct, &IngestLimits::default()) {
                let v: Value = serde_json::from_slice(&out.response_json()).expect("valid JSON");
                prop_assert_eq!(v["accepted"].as_u64(), Some(out.accepted() as u64));
                prop_assert_eq!(v["rejected"].as_u64(), Some(out.rejected as u64));
                prop_assert_eq!(out.errors.len(), out.rejected.min(MAX_ERRORS));
            }
        }

        #[test]
        fn every_element_is_accepted_or_rejected_once(
            elems in prop::collection::vec(element(), 0..40),
            max_events in 1usize..50,
        ) {
            let limits = IngestLimits { max_events_per_batch: max_events, ..IngestLimits::default() };
            let array = serde_json::to_vec(&elems).expect("serialises");
            let out = decode_batch(&array, Some("application/json"), &limits).expect("well-formed");
            prop_assert_eq!(out.accepted() + out.rejected, elems.len());
            prop_assert!(out.accepted() <= max_events);
            prop_assert_eq!(out.errors.len(), out.rejected.min(MAX_ERRORS));
            prop_assert!(out.errors.windows(2).all(|w| w[0].index < w[1].index));
            prop_assert!(out.errors.iter().all(|e| e.index < elems.len()));
            // The same elements as NDJSON decode to the same events and rejections.
            let mut nd = Vec::new();
            for e in &elems {
                nd.extend(serde_json::to_vec(e).expect("serialises"));
                nd.extend(b"\n\n");
            }
            let out_nd = decode_batch(&nd, Some("application/x-ndjson"), &limits).expect("decodes");
            prop_assert_eq!(out_nd, out);
        }
    }
}
