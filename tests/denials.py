"""Reading a denial the way a person copies from it: the YAML of its fix.

A denial's fix (webhook/core/messages.py) is a line of prose, then YAML documents that apply as
they stand (YAML comments among them), then prose again: `fix_documents` returns the documents.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_TOP_LEVEL_KEY = re.compile(r"^(apiVersion|kind|metadata|spec):( |$)")


def fix_yaml(message: str) -> str:
    """The YAML of a denial: from its first `apiVersion:` line to the last line that belongs to
    a document (indented, a list item, a top-level key, `---` or a `#` comment)."""
    lines = message.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("apiVersion:"))
    block = []
    for line in lines[start:]:
        if not (line.startswith((" ", "- ", "---", "#")) or _TOP_LEVEL_KEY.match(line)):
            break
        block.append(line)
    return "\n".join(block) + "\n"


def fix_documents(message: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(fix_yaml(message)) if d]


def named(documents: list[dict[str, Any]], name: str) -> dict[str, Any]:
    [found] = [d for d in documents if d["metadata"]["name"] == name]
    return found
