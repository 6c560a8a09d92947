"""webhook/wire/shapes.py: the API shapes of what the rules read, refused with the bad field's path."""

from __future__ import annotations

import pytest

from tests.reviews import make_review, policy, service
from webhook.wire.review import MalformedReview, parse_review

LB = service("web", type="LoadBalancer")
DENY = policy("deny", {"podSelector": {}, "policyTypes": ["Ingress"]})


def review_of(obj, kind="Service"):
    return make_review(kind=kind, obj=obj)


@pytest.mark.parametrize("kind, spec, problem", [
    pytest.param("Service", {"ports": 5}, "spec.ports must be a list, got an integer", id="ports-int"),
    pytest.param("Service", {"ports": [80]}, "spec.ports[0] must be a map, got an integer", id="ports-of-int"),
    pytest.param("Service", {"ports": [{"port": "80"}]}, "spec.ports[0].port must be an integer, got a string",
                 id="port-a-string"),
    pytest.param("Service", {"ports": [{"port": 80, "targetPort": [1]}]},
                 "spec.ports[0].targetPort must be an integer or a string, got a list", id="target-list"),
    pytest.param("Service", {"ports": [{"port": True}]}, "spec.ports[0].port must be an integer, got a boolean",
                 id="port-bool"),
    pytest.param("Service", {"selector": {"app": 1}}, "spec.selector['app'] must be a string, got an integer",
                 id="selector-value"),
    pytest.param("Service", {"loadBalancerSourceRanges": "0.0.0.0/0"},
                 "spec.loadBalancerSourceRanges must be a list, got a string", id="ranges-string"),
    pytest.param("NetworkPolicy", {"podSelector": "app=web"}, "spec.podSelector must be a map, got a string",
                 id="selector-string"),
    pytest.param("NetworkPolicy", {"podSelector": {"matchExpressions": [1]}},
                 "spec.podSelector.matchExpressions[0] must be a map, got an integer", id="expression-int"),
    pytest.param("NetworkPolicy", {"podSelector": {}, "policyTypes": "Ingress"},
                 "spec.policyTypes must be a list, got a string", id="types-string"),
    pytest.param("NetworkPolicy", {"podSelector": {}, "ingress": [{"from": [{"ipBlock": "0.0.0.0/0"}]}]},
                 "spec.ingress[0].from[0].ipBlock must be a map, got a string", id="ipblock-string"),
    pytest.param("NetworkPolicy", {"podSelector": {}, "egress": [{"ports": [{"endPort": "90"}]}]},
                 "spec.egress[0].ports[0].endPort must be an integer, got a string", id="endport-string"),
])
def test_a_field_of_the_wrong_type_is_refused_with_its_path(kind, spec, problem):
    base = LB if kind == "Service" else DENY
    with pytest.raises(MalformedReview) as refused:
        parse_review(review_of({**base, "spec": spec}, kind))
    assert str(refused.value) == f"request.object.{problem}"
    assert refused.value.status == 400


@pytest.mark.parametrize("kind, spec", [
    pytest.param("Service", {"type": "LoadBalancer", "ports": [{"port": 80, "targetPort": "http"}],
                             "selector": {"app": "web"}, "loadBalancerSourceRanges": ["10.0.0.0/8"]}, id="service"),
    pytest.param("Service", {"ports": None, "selector": None}, id="nulls"),
    pytest.param("NetworkPolicy", {"podSelector": {"matchExpressions": [{"key": "a", "operator": "Exists"}]},
                                   "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": []}}],
                                                "ports": [{"port": "http"}, {"port": 80, "endPort": 90}]}]},
                 id="policy"),
])
def test_api_shapes_pass(kind, spec):
    base = LB if kind == "Service" else DENY
    assert parse_review(review_of({**base, "spec": spec}, kind)).object["spec"] == spec


def test_another_groups_network_policy_is_not_held_to_these_shapes():
    # Another group's kind of the same name has a schema of its own; netguard does not review it.
    spec = {"podSelector": "all()", "ingress": [{"action": "Allow"}]}
    other = {**policy("calico", spec), "apiVersion": "projectcalico.org/v3"}
    assert parse_review(make_review(kind="NetworkPolicy", group="projectcalico.org", obj=other)).object["spec"] == spec
    with pytest.raises(MalformedReview):
        parse_review(make_review(kind="NetworkPolicy", obj=policy("calico", spec)))


# -- specs found fine, known again by their JSON (shapes.spec_problem, decoded=True) ------------

import datetime  # noqa: E402

from webhook.wire import jsoncodec, shapes  # noqa: E402


def _decoded(spec):
    """A Service with this spec as kube-apiserver's body decodes: JSON's own types only."""
    return jsoncodec.loads(jsoncodec.dumps({"metadata": {"name": "web"}, "spec": spec}))


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(shapes, "_FINE", {})
    return shapes._FINE


def test_a_fine_spec_is_kept_and_a_bad_one_refused_as_before(fresh):
    good = _decoded({"type": "LoadBalancer", "ports": [{"port": 80}]})
    assert shapes.spec_problem("", "Service", good, "request.object", decoded=True) is None
    assert len(fresh) == 1
    assert shapes.spec_problem("", "Service", good, "request.object", decoded=True) is None  # known
    bad = _decoded({"type": "LoadBalancer", "ports": [{"port": "80"}]})
    for _ in range(2):  # a refusal is never kept: worked out, and worded, each time
        assert shapes.spec_problem("", "Service", bad, "request.oldObject", decoded=True) == \
            "request.oldObject.spec.ports[0].port must be an integer, got a string"
    assert len(fresh) == 1


def test_objects_not_decoded_from_json_are_always_walked(fresh):
    # A YAML date encodes like its string: known by its encoding, the date would pass.
    as_string = _decoded({"loadBalancerClass": "2024-01-01"})
    assert shapes.spec_problem("", "Service", as_string, "object", decoded=True) is None
    as_date = {"metadata": {"name": "web"}, "spec": {"loadBalancerClass": datetime.date(2024, 1, 1)}}
    assert shapes.spec_problem("", "Service", as_date, "object") == \
        "object.spec.loadBalancerClass must be a string, got date"
    as_tuple = {"spec": {"ports": ({"port": 80},)}}  # a tuple encodes like a list
    assert shapes.spec_problem("", "Service", _decoded({"ports": [{"port": 80}]}), "object", decoded=True) is None
    assert shapes.spec_problem("", "Service", as_tuple, "object") == "object.spec.ports must be a list, got tuple"


def test_the_kept_specs_are_bounded_in_count_and_size(fresh):
    for n in range(shapes.FINE_KEPT + 5):
        shapes.spec_problem("", "Service", _decoded({"ports": [{"port": n}]}), "object", decoded=True)
    assert 0 < len(fresh) <= shapes.FINE_KEPT
    fresh.clear()
    big = _decoded({"loadBalancerSourceRanges": [f"10.0.{i // 256}.{i % 256}/32" for i in range(500)]})
    assert shapes.spec_problem("", "Service", big, "object", decoded=True) is None
    assert fresh == {}  # over FINE_SPEC_BYTES: walked each time, never kept


def test_the_server_path_parses_reviews_as_decoded_json():
    body = jsoncodec.dumps(make_review(obj=LB))
    assert parse_review(jsoncodec.loads(body), decoded=True) == parse_review(jsoncodec.loads(body))
