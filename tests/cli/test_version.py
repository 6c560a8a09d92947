"""One version source (pyproject.toml): `netguard --version` and the netguard_build_info gauge."""

from __future__ import annotations

import platform
import subprocess
import sys
import tomllib
from pathlib import Path

from webhook.serve.metrics import Metrics

ROOT = Path(__file__).resolve().parent.parent.parent
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_version_flag_prints_the_projects_version():
    result = subprocess.run([sys.executable, "-m", "webhook", "--version"], capture_output=True, text=True,
                            timeout=60, cwd=ROOT)
    assert result.returncode == 0
    assert result.stdout.strip() == f"netguard {VERSION}"


def test_build_info_gauge():
    text = Metrics().exposition().decode()
    assert f'netguard_build_info{{python="{platform.python_version()}",version="{VERSION}"}} 1.0' in text


def test_the_licence_is_apache_2_and_declared():
    assert "Apache License" in (ROOT / "LICENSE").read_text() and "Version 2.0" in (ROOT / "LICENSE").read_text()
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"] == {"text": "Apache-2.0"}
