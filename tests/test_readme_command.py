"""`.ci/run` runs exactly the README's test command, so CI tests what a newcomer runs, promtool
included (the alert tests fail without it)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    block = re.search(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.DOTALL)
    assert block, "README.md has no sh block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_ci_runs_the_readmes_test_command_and_nothing_else():
    lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines[:2] == ["set -euo pipefail", 'cd "$(dirname "$0")/.."']
    assert lines[2:] == [readme_commands()[1]]


def test_the_test_command_installs_promtool_when_it_is_missing():
    command = readme_commands()[1]
    assert command.startswith("(command -v promtool >/dev/null || (apt-get update -qq && "
                              "apt-get install -y -qq prometheus >/dev/null)) && ")
    assert command.endswith(" && .venv/bin/python -m pytest")
