"""The bench's requests: recorded AdmissionReviews from tests/fixtures/apiserver-reviews.

Bodies are sent as compact JSON, like kube-apiserver sends them. Each scenario names the answer
netguard must give (checked once over TLS before any load) and the floor response of the same
shape (bench/floor.py, header X-Bench-Response).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "apiserver-reviews"
SHOP_OBJECTS = FIXTURES / "scenario-shop.yaml"  # namespace shop: default-deny
OPEN_NAMESPACE = "bench-open"  # a namespace without any NetworkPolicy


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def _in_namespace(review: dict[str, Any], namespace: str) -> dict[str, Any]:
    review = copy.deepcopy(review)
    request = review["body"]["request"]
    request["namespace"] = namespace
    for key in ("object", "oldObject"):
        if request.get(key):
            request[key]["metadata"]["namespace"] = namespace
    return review


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    fixture: dict[str, Any]
    response: str  # floor response name (X-Bench-Response)
    allowed: bool
    patched: bool

    @property
    def path(self) -> str:
        return self.fixture["path"]

    def body(self) -> bytes:
        return json.dumps(self.fixture["body"], separators=(",", ":")).encode()

    def check(self, status: int, answer: Any) -> str | None:
        """Why netguard's answer is not the expected one, or None."""
        if status != 200:
            return f"HTTP {status}: {answer}"
        response = (answer or {}).get("response") or {}
        if response.get("allowed") is not self.allowed:
            return f"allowed={response.get('allowed')!r}, expected {self.allowed}: {response}"
        if bool(response.get("patch")) is not self.patched:
            return f"patch present={bool(response.get('patch'))}, expected {self.patched}"
        return None


_LB = _fixture("11-validate-Service-CREATE-ssa-lb.json")

SCENARIOS: dict[str, Scenario] = {
    s.name: s for s in (
        Scenario("lb-allow", "(a) validate LoadBalancer, allowed (shop is default-deny)",
                 _LB, "validate-allow", allowed=True, patched=False),
        Scenario("lb-deny", f"(b) validate LoadBalancer, denied ({OPEN_NAMESPACE}: no policy)",
                 _in_namespace(_LB, OPEN_NAMESPACE), "validate-deny", allowed=False, patched=False),
        Scenario("np-mutate", "(c) mutate NetworkPolicy default-deny (label patch)",
                 _fixture("00-mutate-NetworkPolicy-CREATE-default-deny.json"), "mutate",
                 allowed=True, patched=True),
    )
}
