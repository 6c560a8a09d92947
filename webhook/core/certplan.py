"""When netguard's self-managed certificates rotate, and what the webhooks' caBundle holds.

Pure decisions over summaries of the certificates (ids and validity; no cryptography, no clock,
no I/O). webhook/serve/certrotator.py reads the Secret into `Certs`, asks `plan()`, mints what the
plan asks for, and stores `apply()`'s result; the tables in tests/core/test_certplan.py walk it.

The rule that keeps the API server trusting what is served: a CA joins every webhook's caBundle
before it signs anything, and leaves it only after the serving certificate it signed is gone
from every replica.

  steady      bundle [A]       signing A, serving signed by A
  stage       bundle [A, B]    A is past `renew_at` of its life: B is made, in the bundle only
  promote     bundle [A, B]    B has been in every webhook's caBundle for `overlap`: B signs a
                               new serving certificate; A retires (still in the bundle)
  drop        bundle [B]       the serving certificate from B is `overlap` old: every replica
                               serves it by now (each syncs its files far more often), A leaves

The serving certificate is renewed at `renew_at` of its life (or at once when it is missing, not
from the signing CA, or has other names), and never outlives the CA that signs it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Cert:
    """One certificate as the plan sees it. `payload` (the certificate and key themselves, for
    the caller) is carried along and never compared."""

    id: str  # a fingerprint
    not_before: dt.datetime
    not_after: dt.datetime
    issuer: str = ""  # a serving certificate: the id of the CA that signed it
    # When it was made, if later than not_before (certificates are backdated for clock skew):
    # its life, and the overlaps, count from here.
    issued: dt.datetime | None = None
    payload: Any = field(default=None, compare=False, repr=False)

    @property
    def born(self) -> dt.datetime:
        return max(self.issued or self.not_before, self.not_before)

    def usable(self, now: dt.datetime) -> bool:
        return self.not_before <= now < self.not_after

    def due(self, now: dt.datetime, fraction: float) -> bool:
        """Past `fraction` of its life."""
        return now >= self.born + (self.not_after - self.born) * fraction


@dataclass(frozen=True)
class Certs:
    """What netguard's Secret holds."""

    signing: Cert | None = None  # the CA that signs the serving certificate
    pending: Cert | None = None  # the next CA: in the bundle, signing nothing yet
    retired: tuple[Cert, ...] = ()  # former signing CAs, in the bundle until dropped
    serving: Cert | None = None
    serving_fits: bool = True  # its names are the wanted ones and its key is its own


@dataclass(frozen=True)
class Policy:
    ca_validity: dt.timedelta = dt.timedelta(days=365)
    serving_validity: dt.timedelta = dt.timedelta(days=90)
    renew_at: float = 2 / 3  # of a certificate's life
    # How long a new CA is in every caBundle before it signs (the API server reads webhook
    # configurations through an informer: seconds), and how long a retired CA stays after the
    # serving certificate it signed was replaced (every replica re-reads the Secret far more often).
    overlap: dt.timedelta = dt.timedelta(hours=1)

    def __post_init__(self) -> None:
        if not 0 < self.renew_at < 1:
            raise ValueError(f"renew_at must be between 0 and 1, got {self.renew_at}")
        if self.serving_validity * (1 - self.renew_at) <= self.overlap:
            raise ValueError("the serving certificate's last third must be longer than the overlap")
        if self.ca_validity * (1 - self.renew_at) <= 2 * self.overlap:
            raise ValueError("the CA's last third must hold a CA roll (twice the overlap)")

    def serving_not_after(self, now: dt.datetime, signing: Cert) -> dt.datetime:
        return min(now + self.serving_validity, signing.not_after)


@dataclass(frozen=True)
class Plan:
    new_ca: bool = False  # no usable CA at all: make one that signs at once (bootstrap)
    stage: bool = False  # make the next CA and add it to the bundle
    promote: bool = False  # the pending CA signs from now on
    retire: bool = False  # ... and the signing CA moves to the retired ones
    discard_pending: bool = False  # the pending CA is no longer usable
    drop: tuple[str, ...] = ()  # retired CAs that leave the bundle
    issue: bool = False  # a new serving certificate from the (new) signing CA
    reasons: tuple[str, ...] = ()

    @property
    def changes(self) -> bool:
        return any((self.new_ca, self.stage, self.promote, self.discard_pending, self.drop, self.issue))

    @property
    def mints_ca(self) -> bool:
        return self.new_ca or self.stage


def bundle(certs: Certs) -> tuple[Cert, ...]:
    """The CAs every webhook's caBundle must hold: the signing one, the next, the retired."""
    found = [c for c in (certs.signing, certs.pending, *certs.retired) if c is not None]
    return tuple({c.id: c for c in found}.values())


def plan(certs: Certs, published: frozenset[str], now: dt.datetime, policy: Policy) -> Plan:
    """What to change now. `published`: the ids of the CAs found in every webhook's caBundle."""
    reasons: list[str] = []
    signing = certs.signing if certs.signing and certs.signing.usable(now) else None
    pending = certs.pending if certs.pending and certs.pending.usable(now) else None
    discard = certs.pending is not None and pending is None
    if discard:
        reasons.append(f"the next CA {_short(certs.pending)} is no longer valid")
    new_ca = stage = promote = retire = False
    if signing is None and pending is not None:
        promote = True  # nothing else can sign; the next CA is at least in the bundle already
        reasons.append(f"the signing CA is missing or expired: the next CA {_short(pending)} signs at once")
    elif signing is None:
        new_ca = True
        reasons.append("no usable CA: a new one" + (" (the old one expired)" if certs.signing else ""))
    elif pending is None and signing.due(now, policy.renew_at):
        stage = True
        reasons.append(f"CA {_short(signing)} is past {policy.renew_at:.0%} of its life: the next CA "
                       "joins the caBundle")
    elif pending is not None and pending.id in published and now >= pending.born + policy.overlap:
        promote = retire = True
        reasons.append(f"the next CA {_short(pending)} has been in every caBundle for {policy.overlap}: it signs now")

    serving = certs.serving
    drop = [r.id for r in certs.retired if not r.usable(now)]
    reasons += [f"retired CA {_short(r)} expired: it leaves the caBundle" for r in certs.retired if r.id in drop]
    for old in certs.retired:
        if old.id in drop or promote:
            continue
        if serving is not None and serving.issuer != old.id and now >= serving.born + policy.overlap:
            drop.append(old.id)
            reasons.append(f"retired CA {_short(old)} signs nothing served any more: it leaves the caBundle")

    signer = pending if promote else signing
    issue = new_ca or promote
    if not issue:
        why = _serving_problem(certs, signer, now, policy)
        if why:
            issue = True
            reasons.append(why)
    return Plan(new_ca=new_ca, stage=stage, promote=promote, retire=retire, discard_pending=discard,
                drop=tuple(drop), issue=issue, reasons=tuple(reasons))


def _serving_problem(certs: Certs, signer: Cert | None, now: dt.datetime, policy: Policy) -> str:
    serving = certs.serving
    if serving is None:
        return "no serving certificate"
    if signer is None or serving.issuer != signer.id:
        return f"the serving certificate {_short(serving)} is not from the signing CA"
    if not certs.serving_fits:
        return f"the serving certificate {_short(serving)} has other names, or a key not its own"
    if not serving.usable(now):
        return f"the serving certificate {_short(serving)} has expired"
    if serving.due(now, policy.renew_at):
        return f"the serving certificate {_short(serving)} is past {policy.renew_at:.0%} of its life"
    return ""


def apply(certs: Certs, plan: Plan, new_ca: Cert | None = None, new_serving: Cert | None = None) -> Certs:
    """The Secret after `plan`, with the CA and serving certificate minted for it."""
    if plan.mints_ca and new_ca is None:
        raise ValueError("the plan makes a CA: pass new_ca")
    if plan.issue and new_serving is None:
        raise ValueError("the plan issues a serving certificate: pass new_serving")
    signing, pending = certs.signing, None if plan.discard_pending else certs.pending
    retired = [r for r in certs.retired if r.id not in plan.drop]
    if plan.new_ca:
        signing, pending = new_ca, None
    if plan.stage:
        pending = new_ca
    if plan.promote:
        if plan.retire and signing is not None:
            retired.append(signing)
        signing, pending = pending, None
    if plan.issue:
        return Certs(signing, pending, tuple(retired), new_serving, True)
    return replace(certs, signing=signing, pending=pending, retired=tuple(retired))


def _short(cert: Cert | None) -> str:
    return cert.id[:12] if cert is not None else "-"
