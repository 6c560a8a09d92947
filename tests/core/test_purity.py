"""The decision core and the wire format stay pure: no web framework, no kubernetes client, no
I/O, no environment. Checked twice, for every module of webhook/core/ and webhook/wire/: by
importing them in a fresh interpreter, and by reading their source.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def modules_of(package: str) -> tuple[str, ...]:
    """Every module of webhook/<package>/, found on disk: a new file is covered the day it is added."""
    base = ROOT / "webhook" / package
    found = []
    for path in sorted(base.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return tuple(found)


# The decision core and the wire format are pure; every module of both packages is checked.
PURE = modules_of("core") + modules_of("wire")
HEAVY = ("flask", "werkzeug", "gunicorn", "kubernetes")

# Imports that mean network or process I/O, by top-level package.
FORBIDDEN_IMPORTS = {"socket", "requests", "urllib", "urllib3", "http", "subprocess", "flask", "werkzeug",
                     "gunicorn", "kubernetes"}
# Attributes of `os` that read or write the environment.
ENVIRONMENT = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}

# No sanctioned file read: configuration files are read by webhook/cli/configfile.py.
ALLOWED_OPEN: set[tuple[str, str]] = set()


def source_path(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin, module
    return Path(spec.origin)


def test_the_pure_packages_are_found():
    assert "webhook.core.decide" in PURE and "webhook.core.rules.loadbalancer" in PURE
    assert "webhook.wire.review" in PURE and len(PURE) > 15


# --------------------------------------------------------------------------- fresh interpreter


def test_importing_the_core_loads_no_framework_or_client():
    script = textwrap.dedent(f"""
        import importlib, json, sys
        for name in {list(PURE)!r}:
            importlib.import_module(name)
        heavy = {list(HEAVY)!r}
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
        webhook = sorted(m for m in sys.modules if m.startswith("webhook."))
        print(json.dumps({{"loaded": loaded, "webhook": webhook}}))
        assert not loaded, loaded
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    # The subprocess really imported the core (the check is not vacuous).
    assert set(PURE) - {"webhook.core", "webhook.wire", "webhook.core.rules"} <= set(report["webhook"])


def test_the_subprocess_check_can_see_a_heavy_import():
    # Control: the same probe notices flask when something does import it.
    script = "import sys, flask; assert 'flask' in sys.modules and 'werkzeug' in sys.modules"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- static reading


def impurities(tree: ast.AST, module: str = "") -> list[str]:
    """What in this module's source reads the environment, opens files or talks to the network."""
    found: list[str] = []
    os_names = {"os"}  # names bound to the os module in this file
    env_names: set[str] = set()  # names bound to os.environ / os.getenv
    function_of: dict[ast.AST, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for child in ast.walk(node):
                function_of.setdefault(child, node.name)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top in FORBIDDEN_IMPORTS:
                    found.append(f"line {node.lineno}: import {alias.name}")
                if alias.name == "os":
                    os_names.add(alias.asname or "os")
        elif isinstance(node, ast.ImportFrom):
            top = (node.module or "").split(".")[0]
            if top in FORBIDDEN_IMPORTS:
                found.append(f"line {node.lineno}: from {node.module} import ...")
            if node.module == "os":
                for alias in node.names:
                    if alias.name in ENVIRONMENT:
                        found.append(f"line {node.lineno}: from os import {alias.name}")
                        env_names.add(alias.asname or alias.name)
            if node.module in ("builtins", "io") and any(a.name == "open" for a in node.names):
                found.append(f"line {node.lineno}: from {node.module} import open")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in os_names and node.attr in ENVIRONMENT:
                found.append(f"line {node.lineno}: os.{node.attr}")
            if node.value.id in ("io", "builtins", "codecs") and node.attr == "open":
                found.append(f"line {node.lineno}: {node.value.id}.open")
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if node.id in env_names:
                found.append(f"line {node.lineno}: {node.id}")
            if node.id == "open" and (module, function_of.get(node, "")) not in ALLOWED_OPEN:
                found.append(f"line {node.lineno}: open")
    return found


@pytest.mark.parametrize("module", PURE)
def test_pure_module_source_does_no_io_and_reads_no_environment(module):
    tree = ast.parse(source_path(module).read_text(encoding="utf-8"))
    assert impurities(tree, module) == []


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_never_load_configuration_themselves(module):
    tree = ast.parse(source_path(module).read_text(encoding="utf-8"))
    names = {n.attr if isinstance(n, ast.Attribute) else n.id
             for n in ast.walk(tree) if isinstance(n, (ast.Name, ast.Attribute))}
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert not ({"load_settings", "load_settings_or_default"} & (names | imported))


@pytest.mark.parametrize("snippet, expected", [
    pytest.param("import os\nx = os.environ['HOME']", "os.environ", id="os-environ"),
    pytest.param("import os as o\nx = o.getenv('HOME')", "os.getenv", id="aliased-getenv"),
    pytest.param("from os import environ as env\nx = env.get('A')", "from os import environ", id="from-os-environ"),
    pytest.param("def f():\n    return open('x').read()", "open", id="open"),
    pytest.param("import io\nio.open('x')", "io.open", id="io-open"),
    pytest.param("import socket", "import socket", id="socket"),
    pytest.param("import urllib.request", "import urllib.request", id="urllib"),
    pytest.param("from urllib.parse import quote", "from urllib.parse import", id="from-urllib"),
    pytest.param("import requests", "import requests", id="requests"),
    pytest.param("from kubernetes import client", "from kubernetes import", id="kubernetes"),
])
def test_static_check_catches_impurity(snippet, expected):
    # Control: the checker above is not vacuous.
    found = impurities(ast.parse(snippet), "snippet")
    assert any(expected in f for f in found), found


def test_static_check_passes_pure_code():
    snippet = "import os\nimport re\ndef f(p):\n    return os.fsdecode(p), re.compile('x')\n"
    assert impurities(ast.parse(snippet), "snippet") == []
