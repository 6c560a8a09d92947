"""webhook/core/outcome.py: how the rules' answers merge and how actions soften a violation."""

from __future__ import annotations

import pytest

from webhook.core.outcome import MAX_WARNING_CHARS, Verdict, allow, apply_action, combine, short, violation

DENIED = violation("loadbalancer-requires-default-deny", "refused: add a default-deny", "no default-deny")
WARNED = allow("ok", rule="loadbalancer-requires-default-deny", warnings=["port 80 is closed"])
LABELS = violation("required-labels", "add label team", "label team is missing")


def test_no_answer_is_an_allow_with_the_default_reason():
    decision = combine([], "no rule applies")
    assert decision.allowed and decision.verdict == Verdict.ALLOW
    assert decision.reason == "no rule applies" and decision.rule == ""


@pytest.mark.parametrize("only", [DENIED, WARNED, allow("fine"), apply_action(LABELS, "audit")],
                         ids=["denied", "warned", "allowed", "audited"])
def test_one_answer_is_kept_as_it_is(only):
    assert combine([only], "default") == only
    # The same answer merged with a plain allow of no rule keeps its verdict, rule and warnings.
    merged = combine([only, allow("nothing to add")], "default")
    assert (merged.allowed, merged.verdict, merged.rule, merged.warnings) == \
        (only.allowed, only.verdict, only.rule, only.warnings)
    assert merged.reason == f"{only.reason}; nothing to add"


def test_the_first_denial_wins_and_every_warning_is_kept():
    warned_labels = apply_action(LABELS, "warn")
    decision = combine([WARNED, warned_labels, DENIED], "default")
    assert not decision.allowed and decision.message == DENIED.message
    assert decision.warnings == ("port 80 is closed", "label team is missing")
    assert decision.warned_by == ("loadbalancer-requires-default-deny", "required-labels")  # each its rule
    assert decision.rule == "loadbalancer-requires-default-deny,required-labels"


def test_warn_turns_a_violation_into_an_allow_with_its_summary():
    decision = apply_action(DENIED, "warn")
    assert decision.allowed and decision.verdict == Verdict.WARN
    assert decision.warnings == ("no default-deny",) and not decision.confirm_live


def test_audit_allows_silently_and_deny_keeps_the_violation():
    audited = apply_action(DENIED, "audit")
    assert audited.allowed and audited.verdict == Verdict.AUDIT and audited.warnings == ()
    assert apply_action(DENIED, "deny") is DENIED


def test_short_cuts_long_warnings_with_ascii():
    text = "x" * 500
    assert len(short(text)) == MAX_WARNING_CHARS and short(text).endswith("...")
    assert short("fits") == "fits"
