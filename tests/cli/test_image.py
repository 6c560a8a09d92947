"""The image, checked without Docker: the Dockerfile read instruction by instruction (stages, the
pinned base, what the runtime stage holds), and the lock files it installs from (every runtime
dependency of pyproject.toml pinned, with hashes, and nothing else).
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import NamedTuple

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from webhook.cli import manifests

ROOT = Path(__file__).resolve().parent.parent.parent
DOCKERFILE = ROOT / "Dockerfile"
LOCK = ROOT / "requirements.lock"
BUILD_LOCK = ROOT / "requirements-build.lock"
PACKAGING_TOOLS = ("pip", "setuptools", "wheel")


class Instruction(NamedTuple):
    keyword: str
    args: str
    line: int


def instructions(text: str) -> list[Instruction]:
    """Dockerfile instructions, continuation lines joined and comments dropped."""
    found, buffer, start = [], "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if buffer and line.startswith("#"):
            continue  # a comment inside a continued instruction
        start = start or number
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        keyword, _, args = (buffer + line).partition(" ")
        found.append(Instruction(keyword.upper(), args.strip(), start))
        buffer, start = "", 0
    assert not buffer, "the Dockerfile ends inside a continued line"
    return found


def stages(text: str) -> list[list[Instruction]]:
    out: list[list[Instruction]] = []
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            out.append([])
        if out:
            out[-1].append(instruction)
    return out


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return DOCKERFILE.read_text()


def arg_default(text: str, name: str) -> str:
    [value] = [i.args.split("=", 1)[1] for i in instructions(text) if i.keyword == "ARG" and i.args.startswith(name + "=")]
    return value


# --------------------------------------------------------------------------- the Dockerfile


def test_two_stages_from_one_pinned_base(dockerfile):
    build, runtime = stages(dockerfile)
    assert build[0].args == "${PYTHON_IMAGE} AS build" and runtime[0].args == "${PYTHON_IMAGE}"
    base = arg_default(dockerfile, "PYTHON_IMAGE")
    repository, _, tag = base.partition(":")
    assert repository == "python" and tag and "latest" not in tag
    # Pinned by tag: the Python minor version and the Debian release are named.
    assert re.fullmatch(r"3\.11(\.\d+)?-slim-[a-z]+(@sha256:[0-9a-f]{64})?", tag), tag
    # How to pin the digest is written next to it.
    assert "docker buildx imagetools inspect python:3.11-slim-bookworm" in dockerfile
    assert "--build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<digest>" in dockerfile


def test_lock_was_made_for_the_image_python():
    header = LOCK.read_text().splitlines()[:3]
    assert any("with Python 3.11" in line for line in header), header
    assert "3.11" in arg_default(DOCKERFILE.read_text(), "PYTHON_IMAGE")


def test_build_stage_installs_from_the_locks_with_hashes(dockerfile):
    build, _ = stages(dockerfile)
    runs = [i.args for i in build if i.keyword == "RUN"]
    installs = [part.strip() for run in runs for part in run.split("&&") if " install " in part]
    assert installs, "the build stage installs nothing"
    for command in installs:
        words = shlex.split(command)
        if "-r" in words:
            assert "--require-hashes" in words and "--no-deps" in words, command
            assert words[words.index("-r") + 1] in (LOCK.name, BUILD_LOCK.name), command
        else:  # netguard's own wheel, built here: nothing from an index
            assert {"--no-deps", "--no-index"} <= set(words) and words[-1].endswith(".whl"), command
    assert any(f"-r {LOCK.name}" in c for c in installs) and any(f"-r {BUILD_LOCK.name}" in c for c in installs)
    copies = {i.args for i in build if i.keyword == "COPY"}
    assert f"{LOCK.name} {BUILD_LOCK.name} ./" in copies
    assert ".[" not in dockerfile  # no extras: the test dependencies stay out
    # The runtime venv is made without pip, and the build fails if a packaging tool is in it.
    assert any("python -m venv --without-pip /opt/netguard" in run for run in runs)
    assert any("find_spec(m) for m in ('pip', 'setuptools', 'wheel')" in run for run in runs)


def test_runtime_stage_has_no_packaging_or_build_tools(dockerfile):
    _, runtime = stages(dockerfile)
    body = " ".join(i.args for i in runtime if i.keyword == "RUN")
    for tool in ("pip install", "pip3 install", "apt-get install", "apk add", "gcc", "build-essential",
                 "ensurepip --", "get-pip"):
        assert tool not in body, tool
    for tool in PACKAGING_TOOLS:  # the base image's own copies are removed
        assert f"/usr/local/lib/python3.11/site-packages/{tool} " in body + " ", tool
    assert "/usr/local/bin/pip*" in body and "/usr/local/lib/python3.11/ensurepip" in body
    # What comes from the build stage is the venv, nothing else (no sources, no build venv).
    copies = [i.args for i in runtime if i.keyword == "COPY"]
    assert copies == ["--from=build /opt/netguard /opt/netguard"]
    env = " ".join(i.args for i in runtime if i.keyword == "ENV")
    assert "PATH=/opt/netguard/bin:$PATH" in env


def test_runtime_stage_matches_the_deployment(dockerfile):
    _, runtime = stages(dockerfile)
    by_keyword = {i.keyword: i.args for i in runtime}
    deployment = next(d for d in manifests.objects() if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    uid = pod["securityContext"]["runAsUser"]
    assert by_keyword["USER"] == f"{uid}:{uid}"  # numeric, so runAsNonRoot can verify it
    ports = {p["containerPort"] for p in pod["containers"][0]["ports"]}
    assert set(map(int, by_keyword["EXPOSE"].split())) == ports == {8443, 8080}
    assert by_keyword["ENTRYPOINT"] == '["netguard"]'
    assert "command" not in pod["containers"][0]  # the image's ENTRYPOINT is `netguard`
    assert by_keyword["CMD"].startswith('["serve"')
    assert runtime[-1].keyword == "CMD"  # nothing runs as root after USER
    assert [i.keyword for i in runtime].index("USER") > max(
        n for n, i in enumerate(runtime) if i.keyword in ("RUN", "COPY"))


def test_dockerignore_keeps_the_context_small_but_complete():
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignored = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    assert {".venv", "tests", "certs", ".git", "bench", "*.key"} <= ignored
    copied = {"pyproject.toml", "README.md", "LICENSE", "webhook", LOCK.name, BUILD_LOCK.name}
    assert not copied & ignored


def test_the_tag_in_the_dockerfile_example_is_the_manifests_image(dockerfile):
    image = next(d for d in manifests.objects() if d["kind"] == "Deployment")["spec"]["template"]["spec"][
        "containers"][0]["image"]
    assert f"docker build -t {image} ." in dockerfile


# --------------------------------------------------------------------------- the lock files


def locked(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a pip-compile --generate-hashes file."""
    entries: dict[str, tuple[str, list[str]]] = {}
    text = re.sub(r"\\\n\s*", " ", path.read_text())  # join continuation lines
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        spec, *options = line.split(" --hash=")
        name, _, version = spec.strip().partition("==")
        assert version, f"{path.name}: {spec!r} is not pinned with =="
        hashes = [o.strip() for o in options]
        entries[canonicalize_name(name)] = (version, hashes)
    return entries


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_every_lock_entry_is_pinned_with_hashes():
    for path in (LOCK, BUILD_LOCK):
        entries = locked(path)
        assert entries, path
        for name, (version, hashes) in entries.items():
            assert re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version), (path.name, name, version)
            assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), (path.name, name)


def test_lock_covers_every_runtime_dependency():
    entries = locked(LOCK)
    for text in project()["dependencies"]:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in entries, f"{requirement.name} (pyproject.toml) is not in {LOCK.name}: run lock-requirements.sh"
        version = entries[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{LOCK.name} pins {name}=={version}, outside pyproject.toml's {requirement.specifier}")


def test_lock_holds_no_test_or_packaging_tools():
    entries = locked(LOCK)
    test_only = {canonicalize_name(Requirement(t).name) for t in project()["optional-dependencies"]["test"]}
    assert not test_only & set(entries), test_only & set(entries)
    assert not set(PACKAGING_TOOLS) & set(entries)


def test_build_lock_satisfies_the_build_system():
    entries = locked(BUILD_LOCK)
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    for text in requires:
        requirement = Requirement(text)
        version = entries[canonicalize_name(requirement.name)][0]
        assert requirement.specifier.contains(version), (requirement, version)


def test_lock_parser_has_teeth(tmp_path):
    unpinned = tmp_path / "unpinned.lock"
    unpinned.write_text("flask>=3.0 \\\n    --hash=sha256:" + "0" * 64 + "\n")
    with pytest.raises(AssertionError, match="not pinned"):
        locked(unpinned)
