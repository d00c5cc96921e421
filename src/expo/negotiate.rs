//! `Accept` negotiation between Prometheus text 0.0.4 and OpenMetrics, honouring q-values as
//! Prometheus 2.x sends them, e.g.
//! `application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1`.
//! Media types we cannot produce (protobuf) are skipped; when nothing acceptable remains the
//! text format is served, as Prometheus client libraries do.

/// An exposition format sonde can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.0.
    OpenMetrics1,
    /// OpenMetrics 0.0.1 (same wire format, older version string).
    OpenMetrics0,
}

impl Format {
    /// The `Content-Type` header value.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Text => "text/plain; version=0.0.4; charset=utf-8",
            Self::OpenMetrics1 => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Self::OpenMetrics0 => "application/openmetrics-text; version=0.0.1; charset=utf-8",
        }
    }

    /// True for both OpenMetrics versions.
    pub fn is_openmetrics(self) -> bool {
        !matches!(self, Self::Text)
    }
}

/// Picks the format for an `Accept` header value (`None` when absent).
///
/// The candidate with the highest q wins; among equal q, the one listed first. `q=0` means
/// "not acceptable". `*/*`, `text/*` and `text/plain` without a version give text 0.0.4;
/// `application/openmetrics-text` without a version gives OpenMetrics 0.0.1 (as client_golang).
pub fn negotiate(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::Text;
    };
    let mut best: Option<(f32, Format)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let mut q = 1.0f32;
        let mut version: Option<String> = None;
        for p in parts {
            let Some((k, v)) = p.split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches('"');
            match k.trim().to_ascii_lowercase().as_str() {
                "q" => {
                    q = v
                        .parse()
                        .ok()
                        .filter(|q: &f32| (0.0..=1.0).contains(q))
                        .unwrap_or(0.0)
                }
                "version" => version = Some(v.to_string()),
                _ => {}
            }
        }
        if q <= 0.0 {
            continue;
        }
        let format = match media.as_str() {
            "application/openmetrics-text" => match version.as_deref() {
                Some("1.0.0") => Format::OpenMetrics1,
                None | Some("0.0.1") => Format::OpenMetrics0,
                Some(_) => continue,
            },
            "text/plain" => match version.as_deref() {
                None | Some("0.0.4") => Format::Text,
                Some(_) => continue,
            },
            "*/*" | "text/*" => Format::Text,
            _ => continue,
        };
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, format));
        }
    }
    best.map_or(Format::Text, |(_, f)| f)
}

/// True when an `Accept-Encoding` value allows gzip (`q=0` refuses it).
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    accept_encoding.is_some_and(|v| {
        v.split(',').any(|part| {
            let mut it = part.split(';').map(str::trim);
            let coding = it.next().unwrap_or_default();
            let q = it
                .find_map(|p| p.strip_prefix("q="))
                .map_or(1.0, |q| q.trim().parse::<f32>().unwrap_or(0.0));
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && q > 0.0
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_2_42_accept_header_gets_openmetrics_1() {
        let h = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(negotiate(Some(h)), Format::OpenMetrics1);
    }

    #[test]
    fn prometheus_2_5x_header_with_protobuf_first() {
        let h = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(negotiate(Some(h)), Format::OpenMetrics1);
    }

    #[test]
    fn q_values_decide_not_order() {
        let h = "application/openmetrics-text;version=1.0.0;q=0.2,text/plain;version=0.0.4;q=0.9";
        assert_eq!(negotiate(Some(h)), Format::Text);
        let h = "text/plain;version=0.0.4;q=0.5,application/openmetrics-text;version=0.0.1;q=0.6";
        assert_eq!(negotiate(Some(h)), Format::OpenMetrics0);
        // Equal q: first listed wins.
        let h = "text/plain;q=0.5,application/openmetrics-text;version=1.0.0;q=0.5";
        assert_eq!(negotiate(Some(h)), Format::Text);
    }

    #[test]
    fn refused_and_unknown_types_fall_back_to_text() {
        assert_eq!(negotiate(None), Format::Text);
        assert_eq!(
            negotiate(Some("application/openmetrics-text;version=1.0.0;q=0")),
            Format::Text
        );
        assert_eq!(negotiate(Some("application/json")), Format::Text);
        assert_eq!(
            negotiate(Some("application/openmetrics-text; version=2.0.0")),
            Format::Text
        );
        assert_eq!(negotiate(Some("*/*")), Format::Text);
        assert_eq!(
            negotiate(Some("Application/OpenMetrics-Text; Version=1.0.0")),
            Format::OpenMetrics1
        );
    }

    #[test]
    fn gzip_acceptance() {
        assert!(accepts_gzip(Some("gzip")));
        assert!(accepts_gzip(Some("deflate, gzip;q=0.5")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(None));
    }
}
