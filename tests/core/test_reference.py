"""webhook/core/reference.py: the configuration reference and the default file come from the
settings' own defaults and the rules' declarations; the README and the ConfigMap of manifests/
hold exactly that text, so none of them can drift."""

from __future__ import annotations

from pathlib import Path

import yaml

from webhook.core import registry
from webhook.core.config import parse_settings
from webhook.core.reference import KEYS, defaults_yaml, reference_markdown
from webhook.core.settings import Settings, default_settings

ROOT = Path(__file__).resolve().parent.parent.parent


def test_the_default_file_parses_to_the_defaults():
    assert parse_settings(defaults_yaml(), "defaults") == default_settings()
    assert parse_settings(defaults_yaml("guard"), "defaults") == Settings(own_namespace="guard")


def test_the_default_file_writes_every_key_and_every_rule_option():
    written = yaml.safe_load(defaults_yaml())
    for key in KEYS:
        node = written
        for part in key.key.split("."):
            node = node[part]
    for rule in registry.RULES:
        assert set(written["rules"][rule.name]) == {o.key for o in rule.options}


def test_the_reference_names_every_key_the_parser_takes():
    from webhook.core import config
    text = reference_markdown()
    from webhook.core import egressconfig
    top = set(config._TOP_KEYS) - {"labels", "rules", "egress"}
    documented = {k.key for k in KEYS}
    egress = {f"egress.{k}" for k in egressconfig.KEYS if k != "dns"} | {f"egress.dns.{k}" for k in egressconfig.DNS_KEYS}
    assert top | {f"labels.{k}" for k in config._LABEL_KEYS} | egress == documented
    for rule in registry.RULES:
        assert f"`{rule.name}`: {rule.summary}" in text
        for option in rule.options:
            assert f"`rules.{rule.name}.{option.key}`" in text


def test_the_readme_holds_the_generated_text():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"```yaml\n{defaults_yaml()}```" in readme
    assert reference_markdown() in readme


def test_the_config_map_holds_the_default_file():
    doc = yaml.safe_load((ROOT / "manifests" / "base" / "configmap.yaml").read_text(encoding="utf-8"))
    assert doc["data"]["netguard.yaml"] == defaults_yaml(doc["metadata"]["namespace"])


def test_every_reference_row_has_four_cells():
    # An unescaped "|" in a doc text would split its cell and break the README's table.
    import re
    rows = [line for line in reference_markdown().splitlines() if line.startswith("| ")]
    assert rows and all(len(re.findall(r"(?<!\\)\|", row)) == 5 for row in rows), rows
