"""webhook.inventory.objects: Kubernetes objects read from YAML/JSON files, folders and stdin, each with its
file and line; every problem named with its file and line, all of them at once.

`netguard check` (tests/cli/test_check.py) and the offline inventory (tests/inventory/test_offline.py) use this
reader; here it is tested on its own.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest

from webhook.inventory.objects import STDIN_NAME, InputError, Manifest, api_group, parse_manifests, read_manifests

MANIFESTS = Path(__file__).parent.parent / "fixtures" / "manifests"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def located(manifests: list[Manifest]) -> list[tuple[str, str, int]]:
    return [(m.kind, m.name, m.line) for m in manifests]


def problems(*paths: Path | str, **kwargs) -> list[str]:
    with pytest.raises(InputError) as exc:
        read_manifests([str(p) for p in paths], **kwargs)
    assert str(exc.value) == "\n".join(exc.value.problems)
    return exc.value.problems


# --------------------------------------------------------------------------- documents


def test_multi_document_yaml_each_object_at_the_start_of_its_document(tmp_path):
    path = write(tmp_path / "set.yaml", """
        # a comment before the first document

        apiVersion: v1
        kind: Namespace
        metadata: {name: shop}
        ---
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: shop}
        ---
        # an empty document, as kubectl skips it
        """)
    manifests = read_manifests([str(path)])
    assert located(manifests) == [("Namespace", "shop", 3), ("Service", "web", 8)]
    assert {m.source for m in manifests} == {str(path)}
    assert manifests[1].where == f"{path} line 8"


def test_list_is_unwrapped_and_its_items_located(tmp_path):
    path = write(tmp_path / "list.yaml", """
        apiVersion: v1
        kind: List
        items:
        - apiVersion: v1
          kind: Namespace
          metadata: {name: shop}
        - apiVersion: v1
          kind: List
          items:
          - apiVersion: v1
            kind: Service
            metadata: {name: web}
        """)
    assert located(read_manifests([str(path)])) == [("Namespace", "shop", 4), ("Service", "web", 10)]


def test_a_list_of_another_api_group_is_an_object_not_a_wrapper(tmp_path):
    path = write(tmp_path / "list.yaml", "apiVersion: example.com/v1\nkind: List\nitems: []\n")
    assert located(read_manifests([str(path)])) == [("List", "", 1)]


def test_fixture_set_in_name_order():
    manifests = read_manifests([str(MANIFESTS / "mixed")])
    assert [(Path(m.source).name, m.line) for m in manifests] == [
        ("01-namespaces.yaml", 4), ("01-namespaces.yaml", 7), ("10-shop.yaml", 1), ("10-shop.yaml", 7),
        ("10-shop.yaml", 14), ("20-exposed.yaml", 1), ("20-exposed.yaml", 10), ("30-nodeport.json", 1),
        ("40-allow-all.yaml", 1)]


# --------------------------------------------------------------------------- JSON and YAML scalars


def test_json_is_read_as_json_tabs_and_exponents_included(tmp_path):
    path = tmp_path / "svc.json"
    path.write_text('{\n\t"apiVersion": "v1",\n\t"kind": "Service",\n\t"metadata": {"name": "web"},\n'
                    '\t"spec": {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 1e5}}}\n}\n',
                    encoding="utf-8")
    [m] = read_manifests([str(path)])
    assert m.line == 1 and m.name == "web"
    assert m.obj["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] == 100000.0


def test_json_list_items_are_located(tmp_path):
    path = tmp_path / "list.json"
    path.write_text('{"apiVersion": "v1", "kind": "List", "items": [\n'
                    '  {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}},\n'
                    '  {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "b"}}\n]}\n',
                    encoding="utf-8")
    assert located(read_manifests([str(path)])) == [("Namespace", "a", 2), ("Namespace", "b", 3)]


def test_unquoted_dates_stay_strings_as_with_kubectl(tmp_path):
    path = write(tmp_path / "ns.yaml", """
        apiVersion: v1
        kind: Namespace
        metadata:
          name: shop
          labels: {since: 2024-01-01}
          annotations: {at: 2024-01-01T10:00:00Z}
        """)
    [m] = read_manifests([str(path)])
    assert m.metadata["labels"] == {"since": "2024-01-01"}
    assert m.metadata["annotations"] == {"at": "2024-01-01T10:00:00Z"}


def test_a_byte_order_mark_is_not_part_of_the_text(tmp_path):
    path = tmp_path / "ns.yaml"
    path.write_bytes(b"\xef\xbb\xbfapiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n")
    assert located(read_manifests([str(path)])) == [("Namespace", "shop", 1)]


# --------------------------------------------------------------------------- folders


def test_folders_are_searched_recursively_hidden_ones_and_other_files_left_out(tmp_path):
    write(tmp_path / ".github" / "workflows" / "ci.yml", "on: push\njobs: {}\n")
    write(tmp_path / ".git" / "config.yaml", "not: kubernetes\n")
    write(tmp_path / "apps" / ".hidden.yaml", "not: kubernetes\n")
    write(tmp_path / "README.md", "# not read\n")
    write(tmp_path / "b.yml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n")
    write(tmp_path / "apps" / "a.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")
    manifests = read_manifests([str(tmp_path)])
    assert [m.source for m in manifests] == [str(tmp_path / "apps" / "a.yaml"), str(tmp_path / "b.yml")]


def test_a_file_is_read_whatever_its_suffix(tmp_path):
    path = write(tmp_path / "objects.txt", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")
    assert located(read_manifests([str(path)])) == [("Namespace", "a", 1)]


def test_an_empty_folder_is_a_notice_not_an_error(tmp_path):
    told: list[str] = []
    assert read_manifests([str(tmp_path)], notice=told.append) == []
    assert told == [f"{tmp_path}: no *.yaml, *.yml or *.json files"]
    assert read_manifests([str(tmp_path)]) == []  # without a listener: silent


# --------------------------------------------------------------------------- stdin


def test_stdin_yaml_and_json_in_the_order_given(tmp_path):
    path = write(tmp_path / "ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: file}\n")
    stdin = io.StringIO('\n{"apiVersion": "v1", "kind": "Namespace",\n "metadata": {"name": "piped"}}\n')
    manifests = read_manifests(["-", str(path)], stdin)
    assert [(m.source, m.name, m.line) for m in manifests] == [(STDIN_NAME, "piped", 2), (str(path), "file", 1)]


def test_stdin_flow_mapping_that_is_not_json_is_read_as_yaml():
    [m] = parse_manifests("{apiVersion: v1, kind: Namespace, metadata: {name: a}}\n", STDIN_NAME)
    assert m.name == "a"


def test_stdin_given_twice_is_an_error():
    assert problems("-", "-", stdin=io.StringIO("")) == ["- (stdin) given more than once"]


# --------------------------------------------------------------------------- problems


@pytest.mark.parametrize("name, text, expected", [
    pytest.param("bad.yaml", "apiVersion: v1\nkind: Service\nmetadata: name: x\n",
                 "line 3: invalid YAML: mapping values are not allowed here", id="yaml-syntax"),
    pytest.param("bad.json", '{\n  "kind": "Service",\n  "apiVersion": "v1",\n}\n',
                 "line 4: invalid JSON: Expecting property name enclosed in double quotes", id="json-syntax"),
    pytest.param("scalar.yaml", "---\njust a string\n", "line 2: not a Kubernetes object (got a string)",
                 id="scalar"),
    pytest.param("seq.yaml", "- a\n- b\n", "line 1: not a Kubernetes object (got a list)", id="sequence"),
    pytest.param("items.yaml", "apiVersion: v1\nkind: List\nitems: {a: 1}\n",
                 "line 1: List items must be a list (got a dict)", id="list-items"),
    pytest.param("nokind.yaml", "apiVersion: v1\nmetadata: {name: x}\n", "line 1: object has no kind",
                 id="no-kind"),
    pytest.param("noversion.yaml", "\n\nkind: Service\nmetadata: {name: x}\n",
                 "line 3: object has no apiVersion", id="no-apiversion"),
    pytest.param("metadata.yaml", "apiVersion: v1\nkind: Service\nmetadata: [x]\n",
                 "line 1: metadata must be a mapping (got a list)", id="metadata-not-a-mapping"),
])
def test_each_problem_names_the_file_and_the_line(tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    assert problems(path) == [f"{path} {expected}"]


def test_unreadable_inputs_are_named(tmp_path):
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"apiVersion: v1\n\xff\n")
    assert problems(binary, tmp_path / "missing") == [
        f"{binary} line 2: not UTF-8 text (byte 15: invalid start byte)",  # the line it is on
        f"{tmp_path / 'missing'}: no such file or directory"]


def test_every_problem_of_every_input_at_once(tmp_path):
    write(tmp_path / "a.yaml", "apiVersion: v1\nmetadata: {name: x}\n")
    write(tmp_path / "b.yaml", "apiVersion: v1\nkind: Service\nmetadata: name: x\n")
    write(tmp_path / "c.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: fine}\n")
    assert problems(tmp_path, tmp_path / "nope.yaml") == [
        f"{tmp_path / 'b.yaml'} line 3: invalid YAML: mapping values are not allowed here",
        f"{tmp_path / 'nope.yaml'}: no such file or directory",
        f"{tmp_path / 'a.yaml'} line 1: object has no kind"]


def test_vet_adds_the_callers_problems_for_objects_of_the_right_shape(tmp_path):
    write(tmp_path / "a.yaml", """
        apiVersion: v1
        kind: Service
        metadata: {}
        ---
        kind: Service
        """)
    seen: list[int] = []

    def vet(m: Manifest) -> list[str]:
        seen.append(m.line)
        return [f"{m.where}: {m.kind} has no name"] if not m.name else []

    assert problems(tmp_path, vet=vet) == [f"{tmp_path / 'a.yaml'} line 1: Service has no name",
                                           f"{tmp_path / 'a.yaml'} line 5: object has no apiVersion"]
    assert seen == [1]  # not asked about what is no Kubernetes object at all


# --------------------------------------------------------------------------- Manifest


@pytest.mark.parametrize("api_version, group", [
    ("v1", ""), ("networking.k8s.io/v1", "networking.k8s.io"), ("projectcalico.org/v3", "projectcalico.org"),
    ("", ""),
])
def test_api_group(api_version, group):
    assert api_group(api_version) == group


def test_manifest_names_and_namespaces():
    service = Manifest({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}}, "f.yaml", 3)
    namespace = Manifest({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}, "f.yaml", 9)
    calico = Manifest({"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
                       "metadata": {"name": "p", "namespace": "shop"}}, "f.yaml", 1)
    assert (service.group, service.namespace, service.where) == ("", "default", "f.yaml line 3")
    assert (namespace.name, namespace.namespace) == ("shop", "")
    assert (calico.group, calico.kind, calico.namespace) == ("projectcalico.org", "NetworkPolicy", "shop")


@pytest.mark.parametrize("kind, api_version, item_kind", [
    pytest.param("ServiceList", "v1", "Service", id="service-list"),
    pytest.param("NetworkPolicyList", "networking.k8s.io/v1", "NetworkPolicy", id="network-policy-list"),
    pytest.param("NamespaceList", "v1", "Namespace", id="namespace-list"),
])
def test_typed_lists_are_read_as_kubectl_reads_them(tmp_path, kind, api_version, item_kind):
    # As `kubectl get -o yaml` or the API writes them; before, typed lists were skipped, so a
    # Service the server would deny could pass CI.
    text = (f"apiVersion: {api_version}\nkind: {kind}\nitems:\n"
            f"- metadata: {{name: a, namespace: shop}}\n"
            f"- apiVersion: {api_version}\n  kind: {item_kind}\n  metadata: {{name: b, namespace: shop}}\n")
    manifests = read_manifests([str(write(tmp_path / "list.yaml", text))])
    assert [(m.kind, m.api_version, m.name) for m in manifests] == [
        (item_kind, api_version, "a"), (item_kind, api_version, "b")]
