"""The offline inventory: cluster state from YAML files, kept current by what netguard allows.

This is the embedded default (no cluster needed). It is loaded from `--objects DIR` (every
*.yaml / *.yml / *.json file below it, multi-document, `kind: List` unwrapped) and updated by each
non-dry-run Service or NetworkPolicy CREATE/UPDATE/DELETE that netguard allowed at the validating
stage. Each server worker keeps its own copy: with more than one worker, a change a request made
is seen only by the worker that answered it (the live inventory has no such limit).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import yaml

from webhook.labels import is_load_balancer
from webhook.review import AdmissionRequest
from webhook.state import NamespaceView

SUFFIXES = (".yaml", ".yml", ".json")


class ObjectsError(ValueError):
    """An objects file that cannot be read; names the file and the line."""


def _documents(path: Path) -> Iterator[Any]:
    try:
        yield from yaml.safe_load_all(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise ObjectsError(f"{path} line {line}: {exc.problem or exc}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ObjectsError(f"{path}: {exc}") from None


def _flatten(documents: Iterable[Any]) -> Iterator[Mapping[str, Any]]:
    for doc in documents:
        if isinstance(doc, Mapping) and doc.get("kind") == "List":
            yield from _flatten(doc.get("items") or [])
        elif isinstance(doc, Mapping):
            yield doc


def read_objects(root: str | Path) -> list[Mapping[str, Any]]:
    """Every Kubernetes object in the files at or below `root`, in file-name order."""
    root = Path(root)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix in SUFFIXES)
    if not root.exists():
        raise ObjectsError(f"{root}: no such file or directory")
    return [obj for path in files for obj in _flatten(_documents(path))]


class OfflineInventory:
    def __init__(self, objects: Iterable[Mapping[str, Any]] = ()) -> None:
        self._lock = threading.Lock()
        self._views: dict[str, NamespaceView] = {}
        for obj in objects:
            self._apply(obj, deleted=False)

    @classmethod
    def from_path(cls, root: str | Path | None) -> "OfflineInventory":
        return cls(read_objects(root) if root else ())

    def ready(self) -> bool:
        return True

    def view(self, namespace: str) -> NamespaceView:
        return self._views.get(namespace) or NamespaceView(name=namespace)

    def confirm(self, namespace: str) -> NamespaceView:
        # Nothing lags here: the files and the observed requests are the whole truth.
        return self.view(namespace)

    def observe(self, req: AdmissionRequest) -> None:
        if req.dry_run or req.kind not in ("Service", "NetworkPolicy"):
            return
        self._apply(req.current, deleted=req.operation == "DELETE", namespace=req.namespace)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def _apply(self, obj: Mapping[str, Any], deleted: bool, namespace: str = "") -> None:
        kind = obj.get("kind")
        metadata = obj.get("metadata") or {}
        name = str(metadata.get("name", ""))
        if kind == "Namespace":
            namespace = name
        namespace = namespace or str(metadata.get("namespace") or "default")
        with self._lock:
            view = self.view(namespace)
            if kind == "Namespace":
                view = NamespaceView(name=namespace, labels=dict(metadata.get("labels") or {}),
                                     policies=view.policies, load_balancers=view.load_balancers,
                                     known=True)
            elif kind == "NetworkPolicy":
                view = view.without_policy(name) if deleted else view.with_policy(obj)
            elif kind == "Service":
                view = view.with_load_balancer(name, not deleted and is_load_balancer(obj))
            else:
                return
            self._views[namespace] = view
