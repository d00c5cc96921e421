//! Parser for the Prometheus text format (filled in with the textfile collector).
