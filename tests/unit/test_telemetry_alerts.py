"""The example Prometheus alerts in docs/observability.md: metric names and promtool cases."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from imtegrity_proxy.metrics import ProxyMetrics

from tests.fixtures.peers import peer_binary

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "observability.md"
ALERTS_HEADING = "## Example Prometheus alerts"

# promtool unit tests: each alert fires for the instance in trouble and not for the other.
PROMTOOL_CASES = """
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'imtegrity_archive_failures_total{instance="p1"}'
        values: '0 0 0 1 1 1 1 1 1 1 1 1 1'
      - series: 'imtegrity_archive_failures_total{instance="p2"}'
        values: '0x12'
    alert_rule_test:
      - eval_time: 5m
        alertname: IMtegrityArchiveWriteFailed
        exp_alerts:
          - exp_labels: {severity: critical, instance: p1}
            exp_annotations:
              summary: "Archive writes fail on p1"
              description: "About 1 archive writes failed in the last 5 minutes. The proxy \\
                withholds each message it cannot archive and rejects sign-ons; check /readyz \\
                and the archive volume."
      - eval_time: 12m
        alertname: IMtegrityArchiveWriteFailed
        exp_alerts: []
  - interval: 1m
    input_series:
      # p1: 10 sign-ons a minute, 4 rejected upstream and 1 denied by policy.
      - series: 'imtegrity_signons_total{instance="p1",result="success"}'
        values: '0+5x40'
      - series: 'imtegrity_signons_total{instance="p1",result="failed"}'
        values: '0+4x40'
      - series: 'imtegrity_signons_total{instance="p1",result="denied"}'
        values: '0+1x40'
      # p2: only policy denials, which the alert ignores.
      - series: 'imtegrity_signons_total{instance="p2",result="success"}'
        values: '0+5x40'
      - series: 'imtegrity_signons_total{instance="p2",result="denied"}'
        values: '0+5x40'
    alert_rule_test:
      - eval_time: 30m
        alertname: IMtegritySignonFailureRate
        exp_alerts:
          - exp_labels: {severity: warning, instance: p1}
            exp_annotations:
              summary: "Over 20% of sign-ons fail on p1"
              description: "40% of sign-ons in the last 15 minutes did not succeed (policy \\
                denials excluded). The sign-on spans' imtegrity.signon.result and \\
                error_code say where they failed."
  - interval: 1m
    input_series:
      # p1: the failure series appears at 2m, and no connection succeeds after it.
      - series: 'imtegrity_upstream_connect_failures_total{instance="p1",reason="refused"}'
        values: '_ _ 1+1x20'
      - series: 'imtegrity_upstream_connect_duration_seconds_count{instance="p1",via="direct"}'
        values: '5x22'
      # p2: some attempts fail, but others succeed.
      - series: 'imtegrity_upstream_connect_failures_total{instance="p2",reason="timed out"}'
        values: '0+1x22'
      - series: 'imtegrity_upstream_connect_duration_seconds_count{instance="p2",via="direct"}'
        values: '0+3x22'
    alert_rule_test:
      - eval_time: 3m
        alertname: IMtegrityUpstreamUnreachable
        exp_alerts: []
      - eval_time: 10m
        alertname: IMtegrityUpstreamUnreachable
        exp_alerts:
          - exp_labels: {severity: critical, instance: p1}
            exp_annotations:
              summary: "No upstream connection succeeds from p1"
              description: "Upstream connections failed and none succeeded for 5 minutes. \\
                The reason label of imtegrity_upstream_connect_failures_total and the \\
                imtegrity.upstream.connect spans name the target and the error."
"""


def documented_rules() -> str:
    """Return the YAML block under the alerts heading of docs/observability.md."""
    text = DOC_PATH.read_text()
    section = text[text.index(ALERTS_HEADING) :]
    match = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert match is not None, f"no yaml block under {ALERTS_HEADING!r} in {DOC_PATH}"
    return match.group(1)


def rendered_metric_names() -> set[str]:
    """Return every series name /metrics shows once each instrument has recorded once."""
    metrics = ProxyMetrics()
    metrics.session_opened()
    metrics.session_started("login")
    metrics.signon("success")
    metrics.message("outbound", "delivered")
    metrics.bytes_relayed("outbound", 1)
    metrics.frame_relayed("outbound", 0.001)
    metrics.archive_commit(0.001)
    metrics.archive_failure()
    metrics.upstream_connect(0.01, "direct")
    metrics.upstream_connect_failure("refused")
    metrics.rendezvous_blocked()
    metrics.disclaimer()
    text = metrics.render_prometheus().decode()
    metrics.shutdown()
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_alert_block_parses():
    groups = yaml.safe_load(documented_rules())["groups"]
    alerts = [rule["alert"] for group in groups for rule in group["rules"]]
    assert alerts == [
        "IMtegrityArchiveWriteFailed",
        "IMtegritySignonFailureRate",
        "IMtegrityUpstreamUnreachable",
    ]


def test_alert_metric_names_exist():
    groups = yaml.safe_load(documented_rules())["groups"]
    used = set()
    for group in groups:
        for rule in group["rules"]:
            used.update(re.findall(r"\bimtegrity_[a-z_]+", rule["expr"]))
    exposed = rendered_metric_names()
    assert used
    for name in sorted(used):
        assert name in exposed, f"{name} is not a series of /metrics"


@pytest.fixture
def promtool() -> str:
    # Installed by tools/install-peers from Debian's prometheus package.
    return str(peer_binary("promtool", "promtool"))


def test_alert_rules_pass_promtool_check(promtool, tmp_path):
    rules = tmp_path / "rules.yml"
    rules.write_text(documented_rules())
    result = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_fire_as_documented(promtool, tmp_path):
    (tmp_path / "rules.yml").write_text(documented_rules())
    (tmp_path / "tests.yml").write_text(PROMTOOL_CASES)
    result = subprocess.run(
        [promtool, "test", "rules", "tests.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
