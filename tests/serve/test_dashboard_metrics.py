"""Every metric the dashboard and the alerts (manifests/monitoring/) read is one a real netguard
exports: the real server under gunicorn with 2 workers, a few reviews, a live /metrics scrape."""

from __future__ import annotations

import re
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.monitoring import alerts, dashboard_queries, metric_names
from tests.serverproc import Server, lb_review, recorded

# Prometheus's own series for each target: the one name an alert may read that netguard does
# not export.
PROMETHEUS_OWN = {"up"}
# Labels Prometheus (the Operator's ServiceMonitor) puts on every series it scrapes.
TARGET_LABELS = {"namespace", "pod", "job", "instance", "service", "endpoint", "container"}


def queries() -> list[tuple[str, str]]:
    return [(f"alert {a['alert']}", a["expr"]) for a in alerts()] + list(dashboard_queries())


def label_names(expr: str) -> set[str]:
    """Label names in matchers and grouping clauses."""
    found = set()
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        found |= set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    for grouping in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        found |= {name.strip() for name in grouping.split(",") if name.strip()}
    return found


def test_the_name_reader_finds_names_and_skips_the_rest():
    expr = ('histogram_quantile(0.99, sum by (stage, le) (rate(a_bucket{pod=~"$pod", x="b_c"}[$__rate_interval])))'
            ' > 5 and on (pod) b_total offset 5m / ignoring (x) c - time() < 14 * 24 * 3600 + 1e9')
    assert metric_names(expr) == {"a_bucket", "b_total", "c"}
    assert label_names(expr) == {"pod", "x", "stage", "le"}


@pytest.fixture(scope="module")
def scrape(tmp_path_factory):
    """Sample name -> the label names it carries, from a scrape once reviews were answered."""
    srv = Server(tmp_path_factory.mktemp("dashboard"), workers=2).start()
    try:
        for i in range(4):  # one connection each, so both workers answer some
            status, _ = srv.post_review("/validate", lb_review("metered", f"svc{i}"))
            assert status == 200
        mutate = recorded("10-mutate-Service-CREATE-ssa-lb.json")["body"]
        assert srv.post_review("/mutate", mutate)[0] == 200
        assert srv.request("POST", "/validate", b"{bad", {"Content-Type": "application/json"})[0] == 400
        wanted = set().union(*(metric_names(q) for _, q in queries())) - PROMETHEUS_OWN
        deadline = time.monotonic() + 20
        while True:  # the other worker writes its counts within a second; the scan runs at start
            status, text = srv.get("/metrics")
            assert status == 200
            found: dict[str, set[str]] = {}
            for family in text_string_to_metric_families(text.decode()):
                for sample in family.samples:
                    found.setdefault(sample.name, set()).update(sample.labels)
            if wanted <= set(found) or time.monotonic() > deadline:
                return found
            time.sleep(0.2)
    finally:
        assert srv.stop() == 0


@pytest.mark.parametrize("where, expr", queries(), ids=[w for w, _ in queries()])
def test_every_query_reads_metrics_netguard_exports(scrape, where, expr):
    names = metric_names(expr)
    assert names, f"{where}: reads no metric: {expr}"
    missing = names - set(scrape) - PROMETHEUS_OWN
    assert not missing, f"{where}: {sorted(missing)} not in a live /metrics scrape ({expr})"
    own = set().union(*(scrape.get(name, set()) for name in names))
    unknown = label_names(expr) - own - TARGET_LABELS
    assert not unknown, f"{where}: labels {sorted(unknown)} are on none of {sorted(names)}"


def test_the_scrape_has_the_new_gauges_with_their_labels(scrape):
    assert scrape["netguard_certificate_expiry_timestamp_seconds"] == {"cert"}
    assert "netguard_last_scan_timestamp_seconds" in scrape
    assert scrape["netguard_violations"] == {"rule"}


def test_only_the_down_alert_reads_a_series_of_prometheus_itself():
    foreign = {a["alert"] for a in alerts() if metric_names(a["expr"]) & PROMETHEUS_OWN}
    assert foreign == {"NetguardDown"}
