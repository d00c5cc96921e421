//! Grafana dashboard helpers shared by the static checks (`tests/dashboards.rs`) and the
//! real-Prometheus check (`tests/dashboards_prometheus.rs`): loading the shipped dashboards,
//! walking their panels, and finding or substituting template variables.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use serde_json::Value;

/// Parses one dashboard file; the error names the file and the position.
pub fn parse_dashboard(name: &str, text: &str) -> Result<Value, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("{name}: invalid JSON: {e}"))?;
    if !v.is_object() {
        return Err(format!("{name}: not a JSON object"));
    }
    Ok(v)
}

/// Every file of `monitoring/grafana/dashboards`, parsed (a file that is not a dashboard
/// fails, naming it): (file name, dashboard), sorted by file name.
pub fn load_dashboards() -> Vec<(String, Value)> {
    let dir = super::repo().join("monitoring/grafana/dashboards");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let text =
                std::fs::read_to_string(dir.join(&n)).unwrap_or_else(|e| panic!("read {n}: {e}"));
            let d = parse_dashboard(&n, &text).unwrap_or_else(|e| panic!("{e}"));
            (n, d)
        })
        .collect()
}

/// Every panel: top-level ones and those nested in rows (collapsed rows keep theirs inside).
pub fn all_panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().into_iter().flatten() {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

/// A template-variable reference: `$name`, `${name}`, `${name:format}` or `[[name]]` /
/// `[[name:format]]`; the name is capture group 1, 2 or 3.
static VARIABLE: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::[^\]]*)?\]\]").expect("regex")
});

fn variable_name<'t>(c: &regex::Captures<'t>) -> &'t str {
    c.get(1)
        .or(c.get(2))
        .or(c.get(3))
        .expect("variable name")
        .as_str()
}

/// Variable names referenced in `text`, in any of the syntaxes of [`VARIABLE`].
pub fn referenced_variables(text: &str) -> BTreeSet<String> {
    VARIABLE
        .captures_iter(text)
        .map(|c| variable_name(&c).to_string())
        .collect()
}

/// Replaces every variable reference in `text` with its value; panics on a variable without
/// a value.
pub fn substitute(text: &str, values: &BTreeMap<String, String>) -> String {
    VARIABLE
        .replace_all(text, |c: &regex::Captures| {
            let name = variable_name(c);
            values
                .get(name)
                .cloned()
                .unwrap_or_else(|| panic!("no value for ${name} in {text}"))
        })
        .into_owned()
}
