"""/metrics scraped after real requests through gunicorn with 2 workers: counts add up across them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.serverproc import Server, lb_review
from webhook.serve.metrics import FLUSH_SECONDS

REQUESTS = 12


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("metrics")
    srv = Server(folder, workers=2, env={"PROMETHEUS_MULTIPROC_DIR": str(folder / "prometheus")}).start()
    yield srv
    assert srv.stop() == 0


def samples(server: Server) -> dict[tuple[str, tuple], float]:
    status, text = server.get("/metrics")
    assert status == 200
    found = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def wait_until_every_worker_reports_ready(server: Server) -> None:
    """Both workers have made their readiness gauge (a file each: a worker still booting has none,
    and the minimum over the others would read 1 without it) and reported ready."""
    folder = Path(server.env["PROMETHEUS_MULTIPROC_DIR"])
    deadline = time.monotonic() + 20
    while (len(list(folder.glob("gauge_livemin_*.db"))) < 2
           or samples(server).get(("netguard_inventory_ready", ())) != 1):
        assert time.monotonic() < deadline, "a worker never reported ready"
        time.sleep(0.05)


DENIED = ("netguard_admission_requests_total", (
    ("decision", "deny"), ("dry_run", "false"), ("kind", "Service"), ("operation", "CREATE"),
    ("rule", "loadbalancer-requires-default-deny"), ("stage", "validate")))
ERRORS = ("netguard_admission_errors_total", (("stage", "validate"), ("status", "400")))
COUNT = ("netguard_admission_duration_seconds_count", (("stage", "validate"),))


def test_counts_add_up_across_workers(two_workers):
    wait_until_every_worker_reports_ready(two_workers)
    for i in range(REQUESTS):  # one connection each, so both workers answer some
        status, body = two_workers.post_review("/validate", lb_review("metered", f"svc{i}"))
        assert status == 200 and body["response"]["allowed"] is False
    two_workers.request("POST", "/validate", b"{bad", {"Content-Type": "application/json"})
    # Each worker writes its counts at least once a second (webhook/serve/metrics.py): the worker
    # that answers a scrape reports its own calls at once, the other's within FLUSH_SECONDS.
    # A flush writes the durations before the counts, so a scrape between the two sees one but
    # not yet the other: wait for all three.
    deadline = time.monotonic() + FLUSH_SECONDS + 10
    wanted = {COUNT: REQUESTS + 1, DENIED: REQUESTS, ERRORS: 1}
    while {k: samples(two_workers).get(k) for k in wanted} != wanted:
        assert time.monotonic() < deadline, f"counts never added up: {samples(two_workers)}"
        time.sleep(0.1)
    for _ in range(4):  # whichever worker answers the scrape, it reports all workers' samples
        found = samples(two_workers)
        assert found[DENIED] == REQUESTS
        assert found[ERRORS] == 1
        assert found[COUNT] == REQUESTS + 1
        buckets = {dict(labels)["le"] for (name, labels) in found
                   if name == "netguard_admission_duration_seconds_bucket"}
        assert buckets == {"0.005", "0.025", "0.1", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf"}
        # A worker still booting reports 0 until its app is built; both are up by now.
        assert found[("netguard_inventory_ready", ())] == 1
