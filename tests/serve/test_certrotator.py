"""Self-managed certificates against the local API test server (tests/watchserver.py, whose
object store answers Secrets and webhook configurations with resourceVersion conflicts).

A fake clock walks the certificates through their lives. "Trusted" means what kube-apiserver
checks: the certificate in the certificate folder verifies, for the Service's DNS name and at
the clock's time, against the caBundle of every webhook (cryptography's path validation)."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from kubernetes import client

from tests.objectstore import MUTATING, SECRETS, VALIDATING
from tests.watchserver import WatchServer
from webhook.cli import deploy
from webhook.core.certplan import Policy
from webhook.inventory.kube import ClusterError, ObjectApi
from webhook.serve import certstore
from webhook.serve.certrotator import CertRotator, Target

NS, SECRET = "netguard-system", "netguard-certs"
DNS = f"netguard.{NS}.svc"
HOSTS = ("netguard", f"netguard.{NS}", DNS, f"{DNS}.cluster.local")
DAY, HOUR = dt.timedelta(days=1), dt.timedelta(hours=1)
POLICY = Policy(ca_validity=30 * DAY, serving_validity=9 * DAY, overlap=HOUR)
HOOKS = (("ValidatingWebhookConfiguration", "netguard"), ("MutatingWebhookConfiguration", "netguard"))


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, delta: dt.timedelta) -> None:
        self.now += delta


@pytest.fixture
def server():
    with WatchServer() as srv:
        validating, mutating = deploy.webhook_configurations(NS, "", None)
        srv.objects.put(VALIDATING, validating)
        srv.objects.put(MUTATING, mutating)
        yield srv


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make(server, clock, tmp_path):
    apis: list[ObjectApi] = []

    def make_rotator(name: str = "a") -> CertRotator:
        api = ObjectApi(client.ApiClient(client.Configuration(host=server.url)))
        apis.append(api)
        return CertRotator(api, Target(NS, SECRET, HOOKS, HOSTS, tmp_path / name), POLICY, clock)

    yield make_rotator
    for api in apis:
        api.close()


def empty_secret(server: WatchServer) -> None:
    server.objects.put(SECRETS, {"metadata": {"name": SECRET, "namespace": NS}, "type": "Opaque"})


def bundles(server: WatchServer) -> list[bytes]:
    """The caBundle of each of the three webhooks, PEM."""
    found = []
    for resource in (VALIDATING, MUTATING):
        for hook in server.objects.get(resource, "netguard")["webhooks"]:
            found.append(base64.b64decode(hook["clientConfig"].get("caBundle") or ""))
    return found


def trusted(serving_pem: bytes, bundle_pem: bytes, at: dt.datetime) -> bool:
    from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

    if not bundle_pem:
        return False
    verifier = (PolicyBuilder().store(Store(x509.load_pem_x509_certificates(bundle_pem)))
                .time(at.replace(tzinfo=None)).build_server_verifier(x509.DNSName(DNS)))
    try:
        verifier.verify(x509.load_pem_x509_certificate(serving_pem), [])
    except VerificationError:
        return False
    return True


def assert_served_is_trusted(server: WatchServer, folder: Path, clock: Clock) -> None:
    served = (folder / "tls.crt").read_bytes()
    for pem in bundles(server):
        assert trusted(served, pem, clock.now), "the caBundle does not trust the served certificate"


def ca_count(pem: bytes) -> int:
    return len(x509.load_pem_x509_certificates(pem))


def serial(folder: Path) -> int:
    return x509.load_pem_x509_certificate((folder / "tls.crt").read_bytes()).serial_number


def issuer_of(folder: Path) -> x509.Name:
    return x509.load_pem_x509_certificate((folder / "tls.crt").read_bytes()).issuer


def live(clock: Clock, rotators: list[CertRotator], delta: dt.timedelta, step: dt.timedelta = DAY) -> None:
    """`delta` of time with a round of every rotator each `step` (as the pods run them)."""
    end = clock.now + delta
    while clock.now + step <= end:
        clock.advance(step)
        for rotator in rotators:
            rotator.round()
    clock.now = end


def secret_data(server: WatchServer) -> dict[str, bytes]:
    return certstore.decoded(server.objects.get(SECRETS, SECRET, NS)["data"])


# --------------------------------------------------------------------------- from nothing


def test_creates_the_secret_when_there_is_none(server, make, clock, tmp_path):
    done = make().round()
    assert done.secret_written and done.files_written and len(done.patched) == 2
    assert ("POST", SECRETS, SECRET) in server.objects.writes  # it was missing: created
    data = secret_data(server)
    assert {"ca.crt", "ca.key", "tls.crt", "tls.key", "ca-bundle.crt"} <= set(data)
    folder = tmp_path / "a"
    assert (folder / "tls.crt").read_bytes() == data["tls.crt"]
    assert (folder / "tls.key").read_bytes() == data["tls.key"]
    assert all(pem == data["ca-bundle.crt"] for pem in bundles(server))
    assert_served_is_trusted(server, folder, clock)
    assert (folder / "tls.key").stat().st_mode & 0o077 == 0


def test_fills_the_shipped_empty_secret_with_update_only(server, make, clock, tmp_path):
    empty_secret(server)
    make().round()
    writes = [w for w in server.objects.writes if w[1] == SECRETS]
    assert writes == [("PUT", SECRETS, SECRET)]  # no create: RBAC needs get and update only
    secret = server.objects.get(SECRETS, SECRET, NS)
    assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "netguard"
    assert_served_is_trusted(server, tmp_path / "a", clock)


def test_a_second_round_changes_nothing(server, make, tmp_path):
    empty_secret(server)
    rotator = make()
    rotator.round()
    writes, stamp = list(server.objects.writes), (tmp_path / "a" / "tls.crt").stat().st_mtime_ns
    again = rotator.round()
    assert not (again.secret_written or again.patched or again.files_written)
    assert server.objects.writes == writes
    assert (tmp_path / "a" / "tls.crt").stat().st_mtime_ns == stamp


def test_a_restarted_pod_writes_its_files_from_the_secret(server, make, tmp_path):
    empty_secret(server)
    make("a").round()
    writes = list(server.objects.writes)
    done = make("b").round()  # a new pod: empty folder, same Secret
    assert done.files_written and not done.secret_written and server.objects.writes == writes
    assert (tmp_path / "b" / "tls.crt").read_bytes() == (tmp_path / "a" / "tls.crt").read_bytes()


def test_a_garbage_secret_starts_over(server, make, clock, tmp_path):
    server.objects.put(SECRETS, {"metadata": {"name": SECRET, "namespace": NS},
                                 "data": {"ca.crt": base64.b64encode(b"junk").decode(), "ca.key": "!!"}})
    done = make().round()
    assert done.plan.new_ca and done.secret_written
    assert_served_is_trusted(server, tmp_path / "a", clock)


# --------------------------------------------------------------------------- rotation


def test_rotates_the_serving_certificate_at_two_thirds(server, make, clock, tmp_path):
    empty_secret(server)
    rotator, folder = make(), tmp_path / "a"
    rotator.round()
    first, bundle = serial(folder), bundles(server)
    clock.advance(6 * DAY - HOUR)  # before 2/3 of 9 days
    assert not rotator.round().files_written and serial(folder) == first
    clock.advance(2 * HOUR)  # past it
    done = rotator.round()
    assert done.plan.issue and not done.plan.mints_ca and done.files_written
    assert serial(folder) != first
    assert not done.patched and bundles(server) == bundle  # same CA: caBundle untouched
    assert_served_is_trusted(server, folder, clock)


def test_rolls_the_ca_with_the_bundle_overlap(server, make, clock, tmp_path):
    empty_secret(server)
    rotator, folder = make(), tmp_path / "a"
    # At every caBundle write, the certificate on disk at that moment must be trusted by the
    # bundle being written (the files change after the webhooks, in the same round).
    checked: list[int] = []

    def check_patch(method: str, route: Any, body: dict[str, Any]) -> None:
        if (folder / "tls.crt").exists():
            for hook in body["webhooks"]:
                pem = base64.b64decode(hook["clientConfig"]["caBundle"])
                assert trusted((folder / "tls.crt").read_bytes(), pem, clock.now), "bundle drops the served CA"
            checked.append(1)

    server.objects.before(check_patch, method="PATCH", count=None)
    rotator.round()
    old_issuer = issuer_of(folder)
    live(clock, [rotator], 19 * DAY)  # serving certificates renewed on the way
    steps = []
    for advance in (DAY + HOUR, HOUR / 2, HOUR / 2, HOUR / 2, HOUR / 2):
        clock.advance(advance)
        done = rotator.round()
        assert_served_is_trusted(server, folder, clock)
        steps.append((done.plan.stage, done.plan.promote, bool(done.plan.drop), ca_count(bundles(server)[0])))
        if done.plan.promote:
            assert issuer_of(folder) == old_issuer  # same name: tell them apart by key
    # stage (2 CAs), wait, promote (still 2), wait, drop (1 CA)
    assert steps == [(True, False, False, 2), (False, False, False, 2), (False, True, False, 2),
                     (False, False, False, 2), (False, False, True, 1)]
    assert len(checked) >= 3  # the bundle was written at bootstrap, at stage and at drop
    data = secret_data(server)
    assert "ca-next.crt" not in data and "ca-retired.crt" not in data
    new_ca = x509.load_pem_x509_certificate(data["ca.crt"])
    x509.load_pem_x509_certificate((folder / "tls.crt").read_bytes()).verify_directly_issued_by(new_ca)


def test_without_webhook_configurations_the_next_ca_waits(server, make, clock, tmp_path):
    empty_secret(server)
    server.objects._objects.clear()  # no webhook configurations (and no Secret): not published
    empty_secret(server)
    rotator = make()
    first = rotator.round()
    assert any("not found" in p for p in first.problems)
    assert first.files_written  # the server still gets its files
    live(clock, [rotator], 19 * DAY)
    clock.advance(DAY + HOUR)
    assert rotator.round().plan.stage
    clock.advance(2 * DAY)
    done = rotator.round()
    assert not done.plan.promote  # the next CA is in no caBundle: it must not sign


# --------------------------------------------------------------------------- replicas


def test_two_replicas_racing_from_nothing_end_in_one_secret(server, make, clock, tmp_path):
    empty_secret(server)
    a, b = make("a"), make("b")
    # Just before A's first Secret update is answered, B runs a whole round: A's update then
    # carries a resourceVersion that is no longer current.
    server.objects.before(lambda *_: b.round(), method="PUT", resource=SECRETS)
    done = a.round()
    assert done.files_written and not done.secret_written  # A got 409 and adopted B's Secret
    assert [w for w in server.objects.writes if w[1] == SECRETS] == [("PUT", SECRETS, SECRET)]
    assert (tmp_path / "a" / "tls.crt").read_bytes() == (tmp_path / "b" / "tls.crt").read_bytes()
    assert all(pem == secret_data(server)["ca-bundle.crt"] for pem in bundles(server))
    assert_served_is_trusted(server, tmp_path / "a", clock)


def test_two_replicas_interleaved_through_a_ca_roll(server, make, clock, tmp_path):
    empty_secret(server)
    a, b = make("a"), make("b")
    a.round()
    b.round()
    live(clock, [a, b], 19 * DAY)
    clock.advance(DAY + HOUR)
    # B stages the next CA between A's reads and A's Secret update.
    server.objects.before(lambda *_: b.round(), method="PUT", resource=SECRETS)
    a.round()
    data = secret_data(server)
    assert "ca-next.crt" in data and ca_count(data["ca-bundle.crt"]) == 2  # one next CA, not two
    for step in (HOUR, HOUR):
        clock.advance(step)
        for rotator in (b, a):
            rotator.round()
            for name in "ab":
                assert_served_is_trusted(server, tmp_path / name, clock)
    assert (tmp_path / "a" / "tls.crt").read_bytes() == (tmp_path / "b" / "tls.crt").read_bytes()
    assert ca_count(bundles(server)[0]) == 1


def test_a_bundle_patch_over_a_newer_configuration_is_refused(server, make, clock, tmp_path):
    empty_secret(server)
    a, b = make("a"), make("b")
    a.round()
    live(clock, [a], 19 * DAY)
    clock.advance(DAY + HOUR)
    # A stages the next CA in the Secret; before its caBundle patch lands, B reads that Secret
    # and writes the bundle first. A's patch carries the configuration's old resourceVersion:
    # refused (409), and A's round starts over and finds nothing left to do.
    server.objects.before(lambda *_: b.round(), method="PATCH", resource=VALIDATING)
    since = len(server.requests)
    done = a.round()
    patches = [r for r in server.requests[since:] if r.method == "PATCH" and r.resource == VALIDATING]
    accepted = [w for w in server.objects.writes if w == ("PATCH", VALIDATING, "netguard")]
    assert len(patches) == 2 and not done.patched  # B's went through, A's was refused
    assert all(ca_count(pem) == 2 for pem in bundles(server))
    assert len(accepted) >= 2  # bootstrap + B's (never A's stale one on top)
    assert_served_is_trusted(server, tmp_path / "a", clock)


# --------------------------------------------------------------------------- failures


def test_an_unreadable_secret_fails_the_round_and_leaves_the_files(server, make, tmp_path):
    empty_secret(server)
    rotator = make()
    rotator.round()
    before = (tmp_path / "a" / "tls.crt").read_bytes()
    server.objects.fail(500, method="GET", resource=SECRETS)
    with pytest.raises(ClusterError, match="refused to get Secret netguard-system/netguard-certs: HTTP 500"):
        rotator.round()
    assert (tmp_path / "a" / "tls.crt").read_bytes() == before


def test_a_refused_patch_is_reported_not_raised(server, make, tmp_path):
    empty_secret(server)
    server.objects.fail(403, method="PATCH", count=None)
    done = make().round()
    assert done.secret_written and done.files_written and not done.patched
    assert any("HTTP 403" in p for p in done.problems)


# --------------------------------------------------------------------------- a lost CA


def test_a_wiped_secret_keeps_the_ca_replicas_still_serve(server, make, clock, tmp_path):
    # Someone replaces the Secret with an empty one (kubectl replace, a GitOps tool): the new CA
    # joins the caBundle beside the old one, so replica B, still serving the old certificate
    # until its next round, stays trusted; the old CA leaves an overlap later.
    empty_secret(server)
    a, b = make("a"), make("b")
    a.round()
    b.round()
    old = (tmp_path / "b" / "tls.crt").read_bytes()
    empty_secret(server)
    clock.advance(HOUR / 12)
    done = a.round()
    assert done.plan.new_ca
    for pem in bundles(server):
        assert ca_count(pem) == 2
        assert trusted(old, pem, clock.now)  # B's old certificate
        assert trusted((tmp_path / "a" / "tls.crt").read_bytes(), pem, clock.now)
    clock.advance(HOUR / 12)
    b.round()
    assert (tmp_path / "b" / "tls.crt").read_bytes() == (tmp_path / "a" / "tls.crt").read_bytes()
    clock.advance(HOUR)
    assert a.round().plan.drop
    assert all(ca_count(pem) == 1 for pem in bundles(server))


def test_migrating_from_the_manual_ca_keeps_it_for_the_overlap(server, make, clock, tmp_path):
    from webhook.serve.certs import generate
    manual = generate(tmp_path / "manual", ["netguard.netguard-system.svc"])
    for resource in (VALIDATING, MUTATING):
        obj = server.objects.get(resource, "netguard")
        for hook in obj["webhooks"]:
            hook["clientConfig"]["caBundle"] = base64.b64encode(manual.ca_crt.read_bytes()).decode()
        server.objects.put(resource, obj)
    empty_secret(server)
    make().round()
    for pem in bundles(server):  # pods of the old ReplicaSet still serve the manual certificate
        assert trusted(manual.tls_crt.read_bytes(), pem, clock.now)
        assert trusted((tmp_path / "a" / "tls.crt").read_bytes(), pem, clock.now)
