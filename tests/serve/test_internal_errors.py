"""Two error families: a malformed call is the client's (HTTP 4xx), an exception inside netguard
while deciding is netguard's own (HTTP 500 with a JSON body, traceback on stderr, counted,
audited as `error`). Before, the second was answered 422 and audited as the client's fault."""

from __future__ import annotations

import io
import json
import logging

import pytest

from tests.reviews import make_review, service
from webhook.core.settings import default_settings
from webhook.inventory.offline import OfflineInventory
from webhook.serve.admission import Admission
from webhook.serve.app import create_app
from webhook.serve.auditlog import AuditLog
from webhook.serve.metrics import Metrics

JSON = "application/json"


class BrokenInventory(OfflineInventory):
    """An inventory with a bug: reading a view raises something no caller expects."""

    def view(self, namespace):
        raise ZeroDivisionError("a bug inside netguard")


def serve(inventory):
    stream = io.StringIO()
    metrics = Metrics()
    app = create_app(Admission(default_settings(), inventory), AuditLog(stream), metrics)
    return app.test_client(), stream, metrics


@pytest.mark.parametrize("stage", ["validate", "mutate"])
def test_an_exception_while_deciding_is_a_500_with_a_json_body(stage, caplog):
    client, stream, metrics = serve(BrokenInventory())
    review = make_review(obj=service("web", type="LoadBalancer"))
    with caplog.at_level(logging.ERROR, logger="netguard"):
        response = client.post(f"/{stage}", data=json.dumps(review), content_type=JSON)
    assert response.status_code == 500
    assert response.content_type == JSON
    body = response.get_json()
    assert body["status"] == 500 and "netguard failed" in body["error"]
    assert "ZeroDivisionError" not in response.get_data(as_text=True)  # no exception text in bodies
    # The traceback is in the log, with the request it failed on.
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)
    # Audited once, as netguard's error, with the request's own fields.
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["decision"] == "error" and line["http_status"] == 500
    assert line["uid"] == review["request"]["uid"] and line["allowed"] is None
    # Counted as an internal error, not as a malformed call.
    text = metrics.exposition().decode()
    assert f'netguard_internal_errors_total{{stage="{stage}"}} 1.0' in text
    assert 'status="500"' not in text


def test_a_malformed_call_is_still_the_clients_4xx():
    client, stream, metrics = serve(OfflineInventory())
    review = make_review(obj={**service("web", type="LoadBalancer"), "spec": {"type": "LoadBalancer", "ports": 5}})
    response = client.post("/validate", data=json.dumps(review), content_type=JSON)
    assert response.status_code == 400
    assert response.get_json()["error"] == "request.object.spec.ports must be a list, got an integer"
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["decision"] is None and line["http_status"] == 400
    text = metrics.exposition().decode()
    assert 'netguard_admission_errors_total{stage="validate",status="400"} 1.0' in text
    # Not counted as netguard's own error (the series exists from the start, at 0).
    assert 'netguard_internal_errors_total{stage="validate"} 0.0' in text
