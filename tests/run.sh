#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what the tests need (the real
# Prometheus, promtool, Alertmanager, node_exporter and process-exporter from Debian), then runs
# formatting and lint checks and every test. This is the README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(prometheus prometheus-alertmanager prometheus-node-exporter prometheus-process-exporter curl ca-certificates)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  # The packages' postinst scripts try to start the services; nothing here needs them running.
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
for tool in prometheus promtool amtool prometheus-node-exporter prometheus-alertmanager prometheus-process-exporter curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool after install" >&2; exit 1; }
done

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "==> cargo test"
cargo test --all-targets --locked
if [ -d monitoring/rules ] && ls monitoring/rules/*.yml >/dev/null 2>&1; then
  echo "==> promtool check rules / test rules"
  promtool check rules monitoring/rules/*.yml
  if ls monitoring/rules/tests/*.yml >/dev/null 2>&1; then
    promtool test rules monitoring/rules/tests/*.yml
  fi
fi
if [ -f monitoring/prometheus.yml ]; then
  echo "==> promtool check config"
  promtool check config monitoring/prometheus.yml
fi
if [ -f monitoring/alertmanager.yml ]; then
  echo "==> amtool check-config"
  amtool check-config monitoring/alertmanager.yml
fi
echo "==> all tests passed"
