"""`netguard fix`: the files it writes, the files it refuses to touch, and the round trip --
`netguard check` on the original manifests plus the fix exits 0 with no warnings.

Manifest sets: tests/fixtures/manifests (see its README).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.cli.test_scan import FakeApi, namespace, policy, write_kubeconfig
from webhook.cli.check import run_check
from webhook.cli.fix import run_fix
from webhook.cli.main import main
from webhook.core import fix
from webhook.core.settings import default_settings

MANIFESTS = Path(__file__).parent.parent / "fixtures" / "manifests"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = run_fix([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def check_json(capsys, *paths) -> tuple[int, dict]:
    code = run_check(["--format", "json", "--warn-exit-code", "3", *map(str, paths)])
    out = capsys.readouterr().out
    return code, json.loads(out)


def policies_in(folder: Path) -> dict[str, dict]:
    found = {}
    for path in sorted(folder.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            found[f"{path.name}:{doc['metadata']['name']}"] = doc
    return found


# --------------------------------------------------------------------------- the round trip

ROUND_TRIPS = [
    # (manifest sets, the files fix writes)
    (["denied"], ["exposed.yaml"]),
    (["fixable"], ["dns.yaml", "shop.yaml"]),
    (["staged/apps"], ["shop.yaml"]),  # a Service without selector: its default-deny only
    (["allowed"], []),  # already admitted without warnings: nothing to write
    (["fixable", "denied"], ["dns.yaml", "exposed.yaml", "shop.yaml"]),
]


@pytest.mark.parametrize("sets, files", ROUND_TRIPS, ids=["+".join(s) for s, _ in ROUND_TRIPS])
def test_check_admits_the_manifests_plus_the_fix_without_warnings(tmp_path, capsys, sets, files):
    inputs = [MANIFESTS / s for s in sets]
    _, before = check_json(capsys, *inputs)
    out = tmp_path / "fix"
    code, stdout, err = run(capsys, *inputs, "--out", out)
    assert code == 0, err
    assert stdout == ""
    assert sorted(p.name for p in out.glob("*.yaml")) == files
    code, payload = check_json(capsys, *inputs, *([out] if files else []))
    assert code == 0, payload
    assert [r for r in payload["results"] if r["warnings"] or r["decision"] != "allow"] == []
    if files:  # the control: the same manifests without the fix were denied or warned
        assert any(r["decision"] != "allow" for r in before["results"])


def test_what_cannot_be_fixed_is_said(tmp_path, capsys):
    # mixed/: exposed/public-lb has no selector (its default-deny only); shop's allow-all is refused.
    code, _, err = run(capsys, MANIFESTS / "mixed", "--out", tmp_path / "fix")
    assert code == 0
    assert "netguard fix: warning: Service exposed/public-lb: has no selector" in err
    assert "netguard fix: warning: NetworkPolicy shop/allow-all" in err
    assert sorted(policies_in(tmp_path / "fix")) == ["exposed.yaml:default-deny-ingress"]
    _, payload = check_json(capsys, MANIFESTS / "mixed", tmp_path / "fix")
    # exposed/public-lb is admitted now; the user's allow-all stays refused (fix never changes it).
    left = {(r["kind"], r["name"], r["decision"]) for r in payload["results"] if r["decision"] != "allow"}
    assert left == {("NetworkPolicy", "allow-all", "deny")}


def test_a_policy_netguard_refuses_counts_for_nothing(tmp_path, capsys):
    # refused/: its allow-all would admit everything, but netguard refuses it, as check says.
    code, _, err = run(capsys, MANIFESTS / "refused", "--out", tmp_path)
    assert code == 0
    assert "netguard fix: warning: NetworkPolicy shop/allow-all" in err and "(protect-default-deny)" in err
    assert sorted(policies_in(tmp_path)) == ["shop.yaml:netguard-allow-lb-web"]
    _, payload = check_json(capsys, MANIFESTS / "refused", tmp_path)
    left = {(r["kind"], r["name"], r["decision"]) for r in payload["results"] if r["decision"] != "allow"}
    assert left == {("NetworkPolicy", "allow-all", "deny")}  # the Service: admitted, no warning


def test_the_policies_written_for_the_fixable_set(tmp_path, capsys):
    run(capsys, MANIFESTS / "fixable", "--out", tmp_path)
    found = policies_in(tmp_path)
    assert sorted(found) == ["dns.yaml:netguard-allow-lb-resolver", "shop.yaml:default-deny-ingress",
                             "shop.yaml:netguard-allow-lb-web"]
    web = found["shop.yaml:netguard-allow-lb-web"]["spec"]["ingress"][0]
    assert web["ports"] == [{"protocol": "TCP", "port": 8080}, {"protocol": "TCP", "port": 8443}]
    assert web["from"] == [{"ipBlock": {"cidr": "203.0.113.0/24"}}, {"ipBlock": {"cidr": "198.51.100.0/24"}}]
    resolver = found["dns.yaml:netguard-allow-lb-resolver"]["spec"]["ingress"][0]
    assert resolver["from"] == [{"ipBlock": {"cidr": "::/0"}}]
    assert resolver["ports"] == [{"protocol": "UDP", "port": 5353}, {"protocol": "TCP", "port": 5353},
                                 {"protocol": "TCP", "port": 8053}]
    header = [line for line in (tmp_path / "dns.yaml").read_text().splitlines() if line.startswith("#")]
    assert header[0] == "# Written by `netguard fix` for the LoadBalancer Service(s) of namespace dns: resolver."
    assert any(line.startswith("# warning: Service dns/resolver: has no loadBalancerSourceRanges") for line in header)
    assert ("# note: Service dns/resolver: target port 5353/UDP is the container port named dns-udp in "
            "StatefulSet dns/resolver") in header


def test_stdout_without_out_and_the_same_on_every_run(tmp_path, capsys):
    code, first, err = run(capsys, MANIFESTS / "fixable")
    assert code == 0 and "warning: Service dns/resolver: has no loadBalancerSourceRanges" in err
    _, second, _ = run(capsys, MANIFESTS / "fixable")
    assert first == second  # deterministic: ready to commit, no diff on a rerun
    run(capsys, MANIFESTS / "fixable", "--out", tmp_path)
    files = "---\n".join(p.read_text() for p in sorted(tmp_path.glob("*.yaml")))
    assert first == files


def test_a_rerun_over_its_own_output_replaces_it_with_the_same(tmp_path, capsys):
    manifests = tmp_path / "manifests"
    shutil.copytree(MANIFESTS / "fixable", manifests)
    out = manifests / "netguard"  # inside the input folder: read back on the next run
    assert run(capsys, manifests, "--out", out)[0] == 0
    first = {p.name: p.read_text() for p in out.iterdir()}
    code, _, err = run(capsys, manifests, "--out", out)
    assert code == 0, err
    assert {p.name: p.read_text() for p in out.iterdir()} == first


def test_never_replaces_a_file_of_the_users(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    mine = out / "shop.yaml"
    mine.write_text(MANIFESTS.joinpath("fixable", "shop.yaml").read_text())
    code, _, err = run(capsys, MANIFESTS / "fixable", "--out", out)
    assert code == 2
    assert f"refusing to replace {mine} exists and is not a file netguard fix wrote" in err
    assert mine.read_text() == MANIFESTS.joinpath("fixable", "shop.yaml").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["shop.yaml"]  # dns.yaml not written either


def test_an_input_file_is_never_the_output(tmp_path, capsys):
    # `--out` the input folder itself: denied/ has no file named after a namespace...
    folder = tmp_path / "exposed"
    folder.mkdir()
    service = folder / "exposed.yaml"
    service.write_text(MANIFESTS.joinpath("denied", "lb.yaml").read_text())
    code, _, err = run(capsys, folder, "--out", folder)
    assert code == 2 and "refusing to replace" in err
    assert service.read_text() == MANIFESTS.joinpath("denied", "lb.yaml").read_text()


def test_out_must_be_a_folder(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    code, _, err = run(capsys, MANIFESTS / "denied", "--out", target)
    assert code == 2 and f"--out {target}: not a folder" in err


def test_bad_inputs_exit_2_naming_the_file(tmp_path, capsys):
    code, _, err = run(capsys, MANIFESTS / "malformed", "--out", tmp_path / "out")
    assert code == 2 and "bad.yaml line" in err
    assert not (tmp_path / "out").exists()
    config = tmp_path / "netguard.yaml"
    config.write_text("labels: {prefix: 7}\n")
    code, _, err = run(capsys, MANIFESTS / "denied", "--config", config)
    assert code == 2 and f"netguard fix: config: {config} line 1" in err


def test_usage_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        run_fix([])
    assert exc.value.code == 2 and "give the manifests to fix" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_fix(["--kubeconfig", "k", "x"])
    assert "--kubeconfig is only used with --cluster" in capsys.readouterr().err


def test_nothing_to_fix_exits_0(tmp_path, capsys):
    code, out, err = run(capsys, MANIFESTS / "mixed" / "30-nodeport.json")
    assert (code, out) == (0, "") and "no LoadBalancer Service among the inputs" in err


def test_the_netguard_command_runs_fix(tmp_path, capsys):
    assert main(["fix", str(MANIFESTS / "denied"), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "exposed.yaml").exists()
    assert all(fix.is_fix_output(p, "netguard") for p in policies_in(tmp_path).values())


# --------------------------------------------------------------------------- --cluster


class WorkloadApi(FakeApi):
    """FakeApi with the workload collections of namespace shop as well."""

    WORKLOADS = {"/apis/apps/v1/namespaces/shop/deployments": "DeploymentList",
                 "/apis/apps/v1/namespaces/shop/statefulsets": "StatefulSetList",
                 "/apis/apps/v1/namespaces/shop/daemonsets": "DaemonSetList",
                 "/api/v1/namespaces/shop/pods": "PodList"}
    PATHS = {**FakeApi.PATHS, **WORKLOADS}

    def __init__(self, namespaces, policies, services, deployments) -> None:
        super().__init__(namespaces, policies, services)
        self.items.update({path: [] for path in self.WORKLOADS})
        self.items["/apis/apps/v1/namespaces/shop/deployments"] = list(deployments)


def cluster_service() -> dict:
    return yaml.safe_load(MANIFESTS.joinpath("fixable", "shop.yaml").read_text().split("---")[2])


def cluster_deployment() -> dict:
    return yaml.safe_load(MANIFESTS.joinpath("fixable", "shop.yaml").read_text().split("---")[1])


def test_cluster_services_and_workloads(tmp_path, capsys):
    with WorkloadApi([namespace("shop")], [], [cluster_service()], [cluster_deployment()]) as api:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url)
        code, out, err = run(capsys, "--cluster", "--kubeconfig", kubeconfig)
    assert code == 0, err
    docs = list(yaml.safe_load_all(out))
    assert [d["metadata"]["name"] for d in docs] == ["default-deny-ingress", "netguard-allow-lb-web"]
    assert docs[1]["spec"]["ingress"][0]["ports"][0] == {"protocol": "TCP", "port": 8080}  # from the cluster's Deployment
    assert set(WorkloadApi.WORKLOADS) <= set(api.paths())


def test_cluster_workloads_unreadable_keep_the_name(tmp_path, capsys):
    with FakeApi([namespace("shop")], [], [cluster_service()]) as api:  # no workload endpoints: 404
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url)
        code, out, err = run(capsys, "--cluster", "--kubeconfig", kubeconfig)
    assert code == 0
    assert "warning: --cluster: cannot list workloads" in err
    assert "target port http/TCP left as a named port" in err
    allow = list(yaml.safe_load_all(out))[1]
    assert allow["spec"]["ingress"][0]["ports"][0] == {"protocol": "TCP", "port": "http"}


def test_a_cancelling_policy_already_in_the_cluster_is_reported_not_changed(tmp_path, capsys):
    deny = {"podSelector": {}, "policyTypes": ["Ingress"]}
    allow_all = {"podSelector": {}, "ingress": [{}]}
    with FakeApi([namespace("shop")], [policy("shop", "deny", deny), policy("shop", "allow-all", allow_all)],
                 [cluster_service()]) as api:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url)
        code, out, err = run(capsys, "--cluster", "--kubeconfig", kubeconfig)
    assert code == 0
    assert "warning: namespace shop: default-deny ingress is cancelled for IPv4 and IPv6 by allow-all" in err
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(out)] == ["netguard-allow-lb-web"]


def test_cluster_unreachable_exits_2(tmp_path, capsys):
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:9")
    code, _, err = run(capsys, "--cluster", "--kubeconfig", kubeconfig)
    assert code == 2 and "netguard fix: --cluster: cannot list the cluster" in err


# --------------------------------------------------------------------------- valid for the API


def test_every_policy_written_validates_against_the_kubernetes_schemas(capsys):
    # Strictly (no unknown field, every required one), for every minor version netguard supports
    # (tests/cli/test_kube_schemas.py): numbered and named ports, IPv4 and IPv6 blocks.
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    from tests.cli.test_kube_schemas import VERSIONS

    code, out, _ = run(capsys, MANIFESTS / "fixable", MANIFESTS / "denied")
    assert code == 0
    named = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "named", "namespace": "n"},
             "spec": {"type": "LoadBalancer", "selector": {"app": "x"}, "ports": [{"port": 80, "targetPort": "http"}]}}
    docs = [*yaml.safe_load_all(out), *fix.plan([named], default_settings()).policies]
    ports = [p["port"] for d in docs for rule in d["spec"].get("ingress", []) for p in rule["ports"]]
    assert len(docs) == 7 and "http" in ports and 8080 in ports
    for version in VERSIONS:
        for doc in docs:
            kubernetes_validate.validate(doc, version, strict=True)


EGRESS_CONFIG = "egress:\n  required: true\n"


@pytest.mark.parametrize("sets", [["denied"], ["fixable"], ["fixable", "denied"]], ids="+".join)
def test_with_egress_required_the_fix_also_writes_the_egress_default_deny_and_dns(tmp_path, capsys, sets):
    # egress.required: a LoadBalancer's namespace must be default-deny for egress too; the fix
    # writes that policy and the DNS allowance the denial offers, and check then admits all.
    config = tmp_path / "netguard.yaml"
    config.write_text(EGRESS_CONFIG)
    inputs = [MANIFESTS / s for s in sets]
    out = tmp_path / "fix"
    code, _, err = run(capsys, *inputs, "--out", out, "--config", config)
    assert code == 0, err
    written = policies_in(out)
    egress_denies = [d for d in written.values() if d["spec"].get("policyTypes") == ["Egress"]
                     and d["spec"]["podSelector"] == {} and not d["spec"].get("egress")]
    assert egress_denies and all(d["metadata"]["name"] == "default-deny-egress" for d in egress_denies)
    assert any(d["metadata"]["name"] == "allow-dns-egress" for d in written.values())
    code = run_check(["--format", "json", "--warn-exit-code", "3", "--config", str(config),
                      *map(str, inputs), str(out)])
    payload = json.loads(capsys.readouterr().out)
    assert code == 0, payload
    assert [r for r in payload["results"] if r["warnings"] or r["decision"] != "allow"] == []
    # the control: with only the ingress fix, check denies for the missing egress default-deny
    run(capsys, *inputs, "--out", tmp_path / "ingress-only")
    assert run_check(["--format", "json", "--config", str(config), *map(str, inputs),
                      str(tmp_path / "ingress-only")]) == 1
    capsys.readouterr()
