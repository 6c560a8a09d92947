"""Kubernetes objects read from YAML and JSON files, folders and stdin, each with where it was read.

One reader for `netguard check` and for `netguard serve --objects`, so both see the same objects
in the same files: folders searched recursively for *.yaml / *.yml / *.json (hidden ones such as
.git and .github left out), multi-document YAML, `kind: List` unwrapped, JSON decoded as JSON,
unquoted dates kept as strings (as kubectl keeps them), and every problem named with its file
and line. Objects are not interpreted here beyond what makes them Kubernetes objects at all: an
`apiVersion` and a `kind`.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, TextIO

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"
STDIN_NAME = "<stdin>"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the inputs, where it is: `line` 0 when it is about a whole input
    (a file that cannot be read), `source` "" when about none (the command line)."""

    source: str
    line: int
    text: str

    def __str__(self) -> str:
        if not self.source:
            return self.text
        return f"{self.source} line {self.line}: {self.text}" if self.line else f"{self.source}: {self.text}"


class InputError(ValueError):
    """Inputs that cannot be used; `problems` holds one line per problem, each naming the file
    and the line, and `located` the same as Problems (CI reports annotate the file and line)."""

    def __init__(self, problems: Sequence[Problem | str]) -> None:
        self.located = [p if isinstance(p, Problem) else Problem("", 0, p) for p in problems]
        self.problems = [str(p) for p in self.located]
        super().__init__("\n".join(self.problems))


def api_group(api_version: str) -> str:
    """The API group of an apiVersion: `networking.k8s.io/v1` -> `networking.k8s.io`, `v1` -> ``."""
    group, _, _ = api_version.rpartition("/")
    return group


@dataclass(frozen=True)
class Manifest:
    """One object of the inputs and where it was read: the line its document (or, inside a
    `kind: List`, its item) starts on."""

    obj: Mapping[str, Any]
    source: str  # the file as the caller named it (or as found below a folder), or <stdin>
    line: int

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind") or "")

    @property
    def api_version(self) -> str:
        return str(self.obj.get("apiVersion") or "")

    @property
    def group(self) -> str:
        return api_group(self.api_version)

    @property
    def metadata(self) -> Mapping[str, Any]:
        metadata = self.obj.get("metadata")
        return metadata if isinstance(metadata, Mapping) else {}

    @property
    def name(self) -> str:
        return str(self.metadata.get("name") or "")

    @property
    def namespace(self) -> str:
        """The namespace a namespaced object lands in: its own, else `default` (as kubectl
        without -n); empty for a Namespace."""
        if self.kind == "Namespace":
            return ""
        return str(self.metadata.get("namespace") or "default")

    @property
    def where(self) -> str:
        return f"{self.source} line {self.line}"

    def problem(self, text: str) -> Problem:
        """A problem with this object, located where its document starts."""
        return Problem(self.source, self.line, text)


class _Loader(yaml.SafeLoader):
    """YAML as kubectl reads it: a plain scalar that looks like a date stays a string
    (sigs.k8s.io/yaml decodes into interface{}, which never yields a timestamp)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _files(path: str) -> list[Path]:
    """The object files a path names: itself, or every *.yaml/*.yml/*.json below a folder in
    name order, hidden files and folders (.git, .github) left out."""
    root = Path(path)
    if root.is_dir():
        return sorted(p for p in root.rglob("*")
                      if p.is_file() and p.suffix in SUFFIXES
                      and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if root.exists():
        return [root]
    raise InputError([Problem(path, 0, "no such file or directory")])


def _describe(value: Any) -> str:
    """What a value is, for messages about a value of the wrong type."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


def _first_content_line(text: str) -> int:
    return text[: len(text) - len(text.lstrip())].count("\n") + 1


def _yaml_error(source: str, text: str, exc: yaml.YAMLError) -> InputError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        reason = exc.problem or exc.context or "syntax error"
        if exc.context and exc.problem and exc.context_mark is not None and mark is not None:
            reason += f" ({exc.context} on line {exc.context_mark.line + 1})"
        return InputError([Problem(source, line, f"invalid YAML: {reason}")])
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        return InputError([Problem(source, line, f"invalid YAML: {exc.reason} (character {exc.character!r})")])
    return InputError([Problem(source, 0, f"invalid YAML: {exc}")])


def _yaml_documents(text: str, source: str) -> Iterator[tuple[Any, Node]]:
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            yield loader.construct_document(node), node
    except yaml.YAMLError as exc:
        raise _yaml_error(source, text, exc) from None
    finally:
        loader.dispose()


def _json_documents(text: str, source: str) -> list[tuple[Any, Node | None]]:
    """JSON is decoded by `json` (YAML 1.1 reads 1e3 as a string and refuses tab indentation);
    the YAML composer, on the same text with tabs made spaces, only tells where things start."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError([Problem(source, exc.lineno, f"invalid JSON: {exc.msg}")]) from None
    try:
        node = yaml.compose(text.replace("\t", " "), Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        node = None
    return [(value, node)]


def _item_nodes(node: Node | None, count: int) -> list[Node | None]:
    """The nodes of a List document's items, when the document's shape allows finding them."""
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.value == "items" and \
                    isinstance(value, SequenceNode) and len(value.value) == count:
                return list(value.value)
    return [None] * count


def _unwrap(doc: Any, node: Node | None, line: int, source: str) -> Iterator[Manifest]:
    if node is not None:
        line = node.start_mark.line + 1
    if doc is None:  # an empty document: kubectl skips it too
        return
    if not isinstance(doc, Mapping):
        raise InputError([Problem(source, line, f"not a Kubernetes object (got {_describe(doc)})")])
    kind = str(doc.get("kind") or "")
    items = doc.get("items")
    core_list = kind == "List" and str(doc.get("apiVersion", "v1")) == "v1"
    typed_list = kind != "List" and kind.endswith("List") and isinstance(items, list)
    if core_list or typed_list:
        # As kubectl reads them: kind: List (of the core group), or a typed list such as
        # ServiceList or NetworkPolicyList, holds objects that each count on their own. Items of a typed list
        # as the API serves it carry no kind: it is the list's, less "List".
        items = items if items is not None else []
        if not isinstance(items, list):
            raise InputError([Problem(source, line, f"List items must be a list (got {_describe(items)})")])
        for item, item_node in zip(items, _item_nodes(node, len(items))):
            yield from _unwrap(_typed(item, doc), item_node, line, source)
        return
    yield Manifest(doc, source, line)


def _typed(item: Any, listing: Mapping[str, Any]) -> Any:
    kind = str(listing.get("kind") or "")
    if not isinstance(item, Mapping) or "kind" in item or not kind.endswith("List") or kind == "List":
        return item
    return {"apiVersion": listing.get("apiVersion"), "kind": kind[:-len("List")], **item}


def parse_manifests(text: str, source: str, json_text: bool = False) -> list[Manifest]:
    """The objects of one file's text. JSON when `json_text`, else YAML (a JSON document on
    stdin is read as JSON too). Raises InputError naming `source` and the line."""
    stripped = text.lstrip()
    if json_text or (source == STDIN_NAME and stripped[:1] in ("{", "[")):
        try:
            documents: Any = _json_documents(text, source)
        except InputError:
            if json_text:
                raise
            documents = _yaml_documents(text, source)  # stdin: maybe a YAML flow mapping
    else:
        documents = _yaml_documents(text, source)
    first = _first_content_line(text)
    return [m for doc, node in documents for m in _unwrap(doc, node, first, source)]


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError([Problem(str(path), 0, f"cannot read: {exc.strerror or exc}")]) from None
    try:
        # Newlines as text mode reads them (universal newlines): lines count the same.
        return data.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError([Problem(str(path), line, f"not UTF-8 text (byte {exc.start}: {exc.reason})")]) from None


def _shape_problems(m: Manifest) -> list[Problem]:
    """Why this is not a Kubernetes object at all: the apiserver would not even take it."""
    obj = m.obj
    problems = []
    for key in ("apiVersion", "kind"):
        if not isinstance(obj.get(key), str) or not obj.get(key):
            problems.append(m.problem(f"object has no {key}"))
    if obj.get("metadata") is not None and not isinstance(obj.get("metadata"), Mapping):
        problems.append(m.problem(f"metadata must be a mapping (got {_describe(obj.get('metadata'))})"))
    return problems


def read_manifests(paths: Sequence[str], stdin: TextIO | None = None, *,
                   vet: Callable[[Manifest], list[Problem]] | None = None,
                   notice: Callable[[str], None] | None = None,
                   foreign: Callable[[Manifest], None] | None = None) -> list[Manifest]:
    """Every object of every input, in the order given (a folder's files in name order); `-`
    reads `stdin` (default: sys.stdin).

    Everything is read and parsed before returning: InputError lists every problem found, in
    every input, so one run shows them all. `vet` adds the caller's own problems with an object
    that has the shape of one; `notice` is told of a folder without object files, which is not
    an error. With `foreign`, a document with neither apiVersion nor kind (a Helm values file)
    is no Kubernetes object and no error either: it is handed to `foreign` and left out.
    """
    problems: list[Problem] = []
    manifests: list[Manifest] = []
    if list(paths).count(STDIN) > 1:
        problems.append(Problem("", 0, "- (stdin) given more than once"))
    stdin_read = False
    for path in paths:
        try:
            if path == STDIN:
                if stdin_read:
                    continue
                stdin_read = True
                manifests.extend(parse_manifests((stdin or sys.stdin).read(), STDIN_NAME))
                continue
            files = _files(path)
            if not files and notice is not None:
                notice(f"{path}: no *.yaml, *.yml or *.json files")
            for file in files:
                try:
                    manifests.extend(parse_manifests(_read_text(file), str(file), file.suffix == ".json"))
                except InputError as exc:
                    problems.extend(exc.located)
        except InputError as exc:
            problems.extend(exc.located)
    if foreign is not None:
        for m in [m for m in manifests if not m.obj.get("apiVersion") and not m.obj.get("kind")]:
            foreign(m)
        manifests = [m for m in manifests if m.obj.get("apiVersion") or m.obj.get("kind")]
    for m in manifests:
        problems.extend(_shape_problems(m) or (vet(m) if vet is not None else []))
    if problems:
        raise InputError(problems)
    return manifests
