"""RFC 6902 JSON patches for labels, with RFC 6901 pointer escaping.

Label keys contain '/', which a JSON pointer must spell '~1' (and '~' as '~0').
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence  # not typing's: isinstance on it is slow
from typing import Any


def escape(segment: str) -> str:
    # Order matters: escape '~' first so the '~1' we write is not escaped again.
    return segment.replace("~", "~0").replace("/", "~1")


def label_patch(obj: Mapping[str, Any], changes: Mapping[str, str]) -> list[dict[str, Any]]:
    """Operations that set `changes` on the object's labels; empty when there is nothing to do.

    A missing (or null) labels map cannot take a member: it is added whole.
    """
    if not changes:
        return []
    metadata = obj.get("metadata")
    # The exact-type tests first: decoded JSON is plain dicts, and the ABC isinstance is slow.
    if type(metadata) is not dict and not isinstance(metadata, Mapping):
        return [{"op": "add", "path": "/metadata", "value": {"labels": dict(changes)}}]
    labels = metadata.get("labels")
    if type(labels) is not dict and not isinstance(labels, Mapping):
        return [{"op": "add", "path": "/metadata/labels", "value": dict(changes)}]
    return [{"op": "replace" if key in labels else "add",
             "path": f"/metadata/labels/{escape(key)}", "value": value}
            for key, value in changes.items()]


def _unescape(segment: str) -> str:
    # RFC 6901: '~1' before '~0', so '~01' becomes '~1' and not '/'.
    return segment.replace("~1", "/").replace("~0", "~")


def apply_patch(obj: Mapping[str, Any], ops: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A copy of `obj` with RFC 6902 `add`/`replace` operations on object members applied.

    Only what netguard's label patches use; anything else raises ValueError, so a patch the
    server would send but this cannot apply is an error, never silently ignored.
    """
    result = copy.deepcopy(dict(obj))
    for op in ops:
        kind, path = op.get("op"), str(op.get("path", ""))
        if kind not in ("add", "replace") or not path.startswith("/"):
            raise ValueError(f"cannot apply JSON patch operation {op!r}")
        *parents, last = [_unescape(s) for s in path[1:].split("/")]
        target: Any = result
        for segment in parents:
            target = target.get(segment) if isinstance(target, dict) else None
            if not isinstance(target, dict):
                raise ValueError(f"JSON patch path {path}: {segment} is not an object")
        if kind == "replace" and last not in target:
            raise ValueError(f"JSON patch replaces {path}, which does not exist")
        target[last] = copy.deepcopy(op["value"])
    return result
