"""Admission over the live inventory for cluster-scoped requests (a GlobalNetworkPolicy's DELETE):
the live confirmation of a denial must not overturn the guard."""

from __future__ import annotations

import pytest

from tests.inventory.test_cluster_policies_watch import gnp, inventory, server  # noqa: F401 (fixtures)
from tests.reviews import make_request
from webhook.core.config import parse_settings
from webhook.serve.admission import Admission


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_a_cluster_scoped_denial_through_admission_stays_a_denial(server, inventory, mode):
    """Admission confirms a denial resting on the cache with inventory.confirm(namespace). For a
    cluster-scoped request (namespace "") that read lists `namespaces//networkpolicies`, a view
    with no dependents: the guard's refusal to delete the GlobalNetworkPolicy the LoadBalancers
    in `shop` rest on was overturned into an allow (or, against a real API server, a 404 made
    it failureMode's call)."""
    old = {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", **gnp("deny-payments", "team == 'payments'")}
    req = make_request(kind="GlobalNetworkPolicy", group="projectcalico.org", namespace="", operation="DELETE",
                       obj=None, old=old)
    evaluation = Admission(parse_settings(f"failureMode: {mode}\n"), inventory).evaluate("validate", req)
    assert not evaluation.decision.allowed
    assert "Calico GlobalNetworkPolicy deny-payments cannot be deleted" in evaluation.decision.message
    assert not any(r.path.endswith("namespaces//networkpolicies") for r in server.requests)
