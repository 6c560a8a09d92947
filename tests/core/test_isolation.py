"""The isolation table (tests/isolation_cases.py) through the decision core."""

from __future__ import annotations

import pytest

from tests.isolation_cases import IDS, INDEXED, expect, namespace_of, review, state_objects
from tests.reviews import settings, view_of
from webhook.core import decide
from webhook.wire.review import parse_review


@pytest.mark.parametrize("index, case", INDEXED, ids=IDS)
def test_isolation_case(index, case):
    req = parse_review(review(index, case))
    decision = decide.validate(req, view_of(state_objects(index, case), namespace_of(index)), settings())
    expect(case, decision.allowed, decision.rule, list(decision.warnings))


def test_every_row_says_why():
    assert all(len(case.why) > 20 for _, case in INDEXED)
