"""webhook.core.certplan: when the self-managed certificates rotate and what caBundle holds.

Tables of states with readable ids, then a walk over three CA lifetimes that checks, at every
round, that the bundle the API server may be using trusts every certificate a replica may be
serving (replicas adopt the Secret's files one sync interval late)."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from webhook.core.certplan import Cert, Certs, Plan, Policy, apply, bundle, plan

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
POLICY = Policy(ca_validity=30 * DAY, serving_validity=9 * DAY, renew_at=2 / 3, overlap=HOUR)


def ca(name: str, start_day: float, days: float = 30) -> Cert:
    return Cert(name, T0 + start_day * DAY, T0 + (start_day + days) * DAY)


def serving(name: str, issuer: str, start_day: float, days: float = 9) -> Cert:
    return Cert(name, T0 + start_day * DAY, T0 + (start_day + days) * DAY, issuer=issuer)


A, B = ca("A", 0), ca("B", 20)
STEADY = Certs(signing=A, serving=serving("s1", "A", 0))


def at(day: float, hours: float = 0) -> dt.datetime:
    return T0 + day * DAY + hours * HOUR


def what(p: Plan) -> set[str]:
    flags = {name for name in ("new_ca", "stage", "promote", "retire", "discard_pending", "issue")
             if getattr(p, name)}
    return flags | {f"drop:{i}" for i in p.drop}


CASES = [
    pytest.param(Certs(), frozenset(), at(0), {"new_ca", "issue"}, id="empty-secret-bootstraps"),
    pytest.param(STEADY, frozenset("A"), at(1), set(), id="steady-nothing-to-do"),
    pytest.param(STEADY, frozenset("A"), at(6, 1), {"issue"}, id="serving-past-two-thirds-renewed"),
    pytest.param(STEADY, frozenset("A"), at(5, 23), set(), id="serving-just-before-two-thirds-kept"),
    pytest.param(Certs(signing=A), frozenset("A"), at(1), {"issue"}, id="no-serving-issued"),
    pytest.param(Certs(signing=A, serving=serving("s1", "A", 0), serving_fits=False), frozenset("A"), at(1),
                 {"issue"}, id="serving-with-other-names-reissued"),
    pytest.param(Certs(signing=A, serving=serving("x", "Z", 0)), frozenset("A"), at(1), {"issue"},
                 id="serving-from-another-ca-reissued"),
    pytest.param(Certs(signing=A, serving=serving("s", "A", 15)), frozenset("A"), at(20, 1), {"stage"},
                 id="ca-past-two-thirds-stages-the-next"),
    pytest.param(Certs(signing=A, pending=B, serving=serving("s", "A", 20)), frozenset("A"), at(22), set(),
                 id="next-ca-not-published-yet-waits"),
    pytest.param(Certs(signing=A, pending=B, serving=serving("s", "A", 15)), frozenset("AB"), at(20, 0.5), set(),
                 id="next-ca-published-but-overlap-not-over-waits"),
    pytest.param(Certs(signing=A, pending=B, serving=serving("s", "A", 15)), frozenset("AB"), at(20, 1),
                 {"promote", "retire", "issue"}, id="next-ca-published-for-overlap-promoted"),
    pytest.param(Certs(signing=B, retired=(A,), serving=serving("s", "B", 20)), frozenset("AB"),
                 at(20, 0.5), set(), id="retired-ca-kept-while-replicas-may-serve-its-cert"),
    pytest.param(Certs(signing=B, retired=(A,), serving=serving("s", "B", 20)), frozenset("AB"), at(20, 1),
                 {"drop:A"}, id="retired-ca-dropped-after-overlap"),
    pytest.param(Certs(signing=B, retired=(A,), serving=serving("s", "A", 18)), frozenset("AB"), at(21),
                 {"issue"}, id="retired-ca-kept-while-it-signed-the-serving-cert"),
    pytest.param(Certs(signing=ca("A", 0), serving=serving("s", "A", 25, 5)), frozenset("A"), at(31),
                 {"new_ca", "issue"}, id="expired-ca-no-next-starts-over"),
    pytest.param(Certs(signing=A, pending=B, serving=serving("s", "A", 25, 5)), frozenset("A"), at(30, 1),
                 {"promote", "issue"}, id="signing-expired-mid-roll-next-takes-over"),
    pytest.param(Certs(signing=B, retired=(A,), serving=serving("s", "B", 29)), frozenset("AB"), at(30, 0.5),
                 {"drop:A"}, id="expired-retired-ca-dropped"),
    pytest.param(Certs(signing=ca("B", 20), pending=ca("C", 0, 1), serving=serving("s", "B", 21)),
                 frozenset("BC"), at(22), {"discard_pending"}, id="expired-next-ca-discarded"),
]


@pytest.mark.parametrize("certs, published, now, expected", CASES)
def test_plan(certs: Certs, published: frozenset[str], now: dt.datetime, expected: set[str]) -> None:
    decided = plan(certs, published, now, POLICY)
    assert what(decided) == expected, decided.reasons
    assert decided.changes == bool(expected)
    assert len(decided.reasons) >= (1 if expected else 0)  # every change says why


def test_apply_moves_cas_through_the_roll() -> None:
    staged = apply(Certs(signing=A, serving=serving("s", "A", 15)), Plan(stage=True), new_ca=B)
    assert (staged.signing, staged.pending, staged.retired) == (A, B, ())
    assert [c.id for c in bundle(staged)] == ["A", "B"]
    new = serving("t", "B", 20)
    promoted = apply(staged, Plan(promote=True, retire=True, issue=True), new_serving=new)
    assert (promoted.signing, promoted.pending, promoted.retired, promoted.serving) == (B, None, (A,), new)
    assert [c.id for c in bundle(promoted)] == ["B", "A"]
    dropped = apply(promoted, Plan(drop=("A",)))
    assert [c.id for c in bundle(dropped)] == ["B"] and dropped.serving == new


def test_apply_needs_what_the_plan_mints() -> None:
    with pytest.raises(ValueError, match="new_ca"):
        apply(Certs(), Plan(new_ca=True, issue=True), new_serving=serving("s", "A", 0))
    with pytest.raises(ValueError, match="new_serving"):
        apply(Certs(), Plan(new_ca=True, issue=True), new_ca=A)


def test_serving_never_outlives_its_ca() -> None:
    assert POLICY.serving_not_after(at(25), A) == A.not_after
    assert POLICY.serving_not_after(at(1), A) == at(10)


@pytest.mark.parametrize("kwargs, message", [
    pytest.param({"renew_at": 1.0}, "renew_at", id="renew-at-one"),
    pytest.param({"serving_validity": 2 * HOUR}, "serving", id="serving-too-short-for-overlap"),
    pytest.param({"ca_validity": 5 * HOUR}, "CA", id="ca-too-short-for-a-roll"),
])
def test_policy_refuses_timings_that_cannot_roll(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Policy(**{"ca_validity": 30 * DAY, "serving_validity": 9 * DAY, "overlap": HOUR, **kwargs})


# --------------------------------------------------------------------------- the walk


def walk(days: float, step: dt.timedelta, lag: dt.timedelta, publish: bool = True):
    """Round after round: plan, mint, apply, publish the bundle (as the controller does). Yields
    (now, the bundle in the webhooks, the previous one, every serving cert a replica may serve)."""
    names = (f"c{i}" for i in itertools.count())
    certs, published, previous = Certs(), frozenset[str](), frozenset[str]()
    history: list[tuple[dt.datetime, Cert]] = []  # serving certs by the time they were written
    now = T0
    while now < T0 + days * DAY:
        decided = plan(certs, published, now, POLICY)
        new_ca = Cert(next(names), now, now + POLICY.ca_validity) if decided.mints_ca else None
        signer = new_ca if decided.new_ca else certs.pending if decided.promote else certs.signing
        new_serving = None
        if decided.issue:
            assert signer is not None
            new_serving = Cert(next(names), now, POLICY.serving_not_after(now, signer), issuer=signer.id)
        certs = apply(certs, decided, new_ca, new_serving)
        if new_serving is not None:
            history.append((now, new_serving))
        if publish:
            previous, published = published, frozenset(c.id for c in bundle(certs))
        # A replica serves what the Secret held at some moment of the last `lag`.
        recent = [c for t, c in history if t > now - lag]
        older = [c for t, c in history if t <= now - lag][-1:]
        yield now, certs, published, previous, recent + older
        now += step


def test_walk_bundle_always_trusts_what_is_served() -> None:
    rolls = 0
    cas = {}
    for now, certs, published, previous, served in walk(days=95, step=dt.timedelta(minutes=10),
                                                         lag=dt.timedelta(minutes=20)):
        cas.update({c.id: c for c in bundle(certs)})
        for cert in served:
            # The API server may still use the bundle written one round ago: both must trust it.
            for trusted in (published, previous):
                if trusted:
                    assert cert.issuer in trusted, (now, cert, sorted(trusted))
            assert cert.usable(now) or now < T0 + 1 * HOUR, (now, cert)
            assert cas[cert.issuer].usable(now), (now, cert)
        rolls = max(rolls, len([c for c in cas.values() if c.id != certs.signing.id]))
    assert rolls >= 3  # three CA lifetimes of 30 days: the walk did roll the CA, more than once
    assert len(bundle(certs)) <= 2


def test_walk_without_publishing_never_switches_before_the_old_ca_expires() -> None:
    # The webhooks cannot be written (missing, or RBAC): the next CA waits; only the old CA's
    # expiry (when nothing else can sign) makes it sign.
    switched = []
    signing = None
    for now, certs, *_ in walk(days=35, step=HOUR, lag=HOUR, publish=False):
        if signing is not None and certs.signing.id != signing:
            switched.append(now)
        signing = certs.signing.id
    assert switched and switched[0] >= T0 + 30 * DAY
