"""Objects as the YAML netguard writes for people: `netguard manifests`, `netguard fix` and the
allow policy a denial offers (webhook/core/fixpolicies.py) all render through `dump`, so a policy
reads the same in a file and in a message.

Pure: a dict in, text out.
"""

from __future__ import annotations

from typing import Any

import yaml


class Dumper(yaml.SafeDumper):
    """Block lists indented under their key, multi-line strings as literal blocks."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:  # no &id001 anchors: every object spelled out
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_str(value)


Dumper.add_representer(str, _represent_str)


def dump(doc: Any) -> str:
    """One YAML document, keys in the order given, no line folding."""
    return yaml.dump(doc, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=1000)
