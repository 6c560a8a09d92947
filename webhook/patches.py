"""RFC 6902 JSON patches for labels, with RFC 6901 pointer escaping.

Label keys contain '/', which a JSON pointer must spell '~1' (and '~' as '~0').
"""

from __future__ import annotations

from collections.abc import Mapping  # not typing's: isinstance on it is slow
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
    if not isinstance(metadata, Mapping):
        return [{"op": "add", "path": "/metadata", "value": {"labels": dict(changes)}}]
    labels = metadata.get("labels")
    if not isinstance(labels, Mapping):
        return [{"op": "add", "path": "/metadata/labels", "value": dict(changes)}]
    return [{"op": "replace" if key in labels else "add",
             "path": f"/metadata/labels/{escape(key)}", "value": value}
            for key, value in changes.items()]
