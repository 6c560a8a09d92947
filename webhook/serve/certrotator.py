"""Self-managed certificates (`netguard serve --manage-certs SECRET`): one round reads the
Secret and the two webhook configurations, lets webhook/core/certplan.py decide, mints what it
asks for (webhook/serve/certs.py), writes the Secret, the webhooks' caBundle and the certificate
files the server reads, in that order.

Several replicas converge through the Secret's resourceVersion: every write is conditional on
the version read, a 409 Conflict means another replica wrote first, and the round starts over
from what it wrote. The webhook configurations are read before the Secret and patched on their
own resourceVersion, so a replica holding an old Secret can never put back an older caBundle
over a newer one: its patch is refused, or overwritten by the replica that read the newer Secret.
https://kubernetes.io/docs/reference/using-api/api-concepts/#conflicts
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from webhook.core.certplan import Certs, Plan, Policy, apply, bundle, plan
from webhook.inventory.kube import ClusterError, Conflict, ObjectApi
from webhook.serve import certs as certfiles
from webhook.serve import certstore

CONFLICT_RETRIES = 5
MANAGED_BY = {"app.kubernetes.io/managed-by": "netguard"}


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def say(message: str) -> None:
    print(f"netguard: certificates: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Target:
    """What one netguard manages: its Secret, its webhook configurations, its names, its files."""

    namespace: str
    secret: str
    webhooks: tuple[tuple[str, str], ...]  # (kind, name)
    hosts: tuple[str, ...]  # DNS names and IPs of the serving certificate
    cert_dir: Path


@dataclass
class Round:
    plan: Plan
    secret_written: bool = False
    patched: list[str] = field(default_factory=list)  # "Kind/name" of the configurations patched
    files_written: bool = False
    problems: list[str] = field(default_factory=list)  # what could not be done (logged, not raised)


class CertRotator:
    def __init__(self, api: ObjectApi, target: Target, policy: Policy | None = None,
                 clock: Callable[[], dt.datetime] = utc_now) -> None:
        self.api = api
        self.target = target
        self.policy = policy or Policy()
        self.clock = clock
        self.names = certfiles.subject_alt_names(list(target.hosts), None, None)

    def round(self) -> Round:
        """One reconciliation. Raises ClusterError when the Secret cannot be read or written
        (the files are then left as they were)."""
        for _ in range(CONFLICT_RETRIES):
            try:
                return self._round()
            except Conflict as exc:
                say(f"{exc}; reading it again")
        raise ClusterError(f"Secret {self.target.namespace}/{self.target.secret} kept changing under "
                           f"{CONFLICT_RETRIES} attempts in a row")

    def _round(self) -> Round:
        problems: list[str] = []
        configurations = {hook: self._read_configuration(hook, problems) for hook in self.target.webhooks}
        secret = self._read_secret()
        now = self.clock()
        current, unusable = certstore.read_secret(secret.get("data"), self.names, now)
        if current.signing is None and current.pending is None:
            current = self._adopt(current, configurations.values(), now)
        decided = plan(current, certstore.published(configurations.values()), now, self.policy)
        result = Round(decided, problems=problems)
        if decided.changes:
            for line in (*unusable, *decided.reasons):
                say(f"Secret {self.target.namespace}/{self.target.secret}: {line}")
            current = self._mint(current, decided, now)
            body = dict(secret, data=certstore.secret_data(current))
            body["metadata"] = dict(secret["metadata"], labels={**secret["metadata"].get("labels", {}), **MANAGED_BY})
            self.api.replace_secret(self.target.namespace, self.target.secret, body)  # Conflict: start over
            result.secret_written = True
        ca_bundle = certstore.bundle_pem(current)
        for (kind, name), configuration in configurations.items():
            if configuration is None:
                continue
            patch = certstore.bundle_patch(configuration, ca_bundle)
            if patch is None:
                continue
            try:
                self.api.patch_webhook_configuration(kind, name, patch)
            except Conflict:
                raise  # changed since read: the round starts over
            except ClusterError as exc:  # RBAC, or the API: reported, the files are still written
                problems.append(str(exc))
                continue
            result.patched.append(f"{kind}/{name}")
            say(f"{kind} {name}: caBundle set ({len(bundle(current))} CA)")
        result.files_written = self.write_files(current)
        for problem in problems:
            say(problem)
        return result

    def _adopt(self, current: Certs, configurations: Any, now: dt.datetime) -> Certs:
        """A Secret without a CA (new, wiped, or replaced by hand) while the webhooks trust
        some: those stay in the caBundle as retired CAs, so replicas still serving a
        certificate they signed (an older Secret, the manual `netguard certs` path before a
        migration) stay trusted until the plan drops them, an overlap after the new
        certificate is out."""
        known = {c.id for c in current.retired}
        adopted = tuple(c for c in certstore.trusted_cas(configurations, now) if c.id not in known)
        if adopted:
            say(f"keeping {len(adopted)} CA(s) of the caBundle that the Secret does not hold, for the overlap")
        return replace(current, retired=current.retired + adopted)

    def _read_configuration(self, hook: tuple[str, str], problems: list[str]) -> dict[str, Any] | None:
        kind, name = hook
        try:
            found = self.api.get_webhook_configuration(kind, name)
        except ClusterError as exc:
            problems.append(str(exc))
            return None
        if found is None:
            problems.append(f"{kind} {name} not found: its caBundle cannot be written, and the next CA "
                            "will not sign before the current one expires")
        return found

    def _read_secret(self) -> dict[str, Any]:
        ns, name = self.target.namespace, self.target.secret
        secret = self.api.get_secret(ns, name)
        if secret is not None:
            return secret
        # The manifests ship the Secret empty, so RBAC needs only get/update on that one name
        # (create cannot be limited by resourceNames). Without it, try to create it.
        say(f"Secret {ns}/{name} not found: creating it")
        return self.api.create_secret(ns, {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                                           "metadata": {"name": name, "namespace": ns, "labels": dict(MANAGED_BY)}})

    def _mint(self, current: Certs, decided: Plan, now: dt.datetime) -> Certs:
        new_ca = None
        if decided.mints_ca:
            new_ca = certstore.ca_cert(*certfiles.new_ca(now, self.policy.ca_validity))
        signer = new_ca if decided.new_ca else current.pending if decided.promote else current.signing
        new_serving = None
        if decided.issue:
            assert signer is not None  # the plan issues only with a CA to sign
            ca, ca_key = signer.payload
            cert, key = certfiles.issue_serving(self.names, ca, ca_key, now,
                                                self.policy.serving_not_after(now, signer))
            new_serving = certstore.serving_cert(cert, key, signer.id)
        return apply(current, decided, new_ca, new_serving)

    def write_files(self, current: Certs) -> bool:
        """tls.crt, tls.key and ca.crt (the caBundle) in the certificate folder, if they differ.
        Each file is replaced by a rename (readers see a whole old or a whole new file); the
        certificate goes first, as in certs.generate()."""
        if current.serving is None:
            return False
        cert, key = current.serving.payload
        folder = self.target.cert_dir
        wanted = [(folder / "tls.crt", certfiles.cert_pem(cert), certfiles.CERT_MODE),
                  (folder / "tls.key", certfiles.key_pem(key), certfiles.KEY_MODE),
                  (folder / "ca.crt", certstore.bundle_pem(current), certfiles.CERT_MODE)]
        if all(_holds(path, data) for path, data, _ in wanted):
            return False
        folder.mkdir(parents=True, exist_ok=True)
        certfiles.install(wanted)
        return True


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.read_bytes() == data
    except OSError:
        return False
