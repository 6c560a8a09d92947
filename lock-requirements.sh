#!/usr/bin/env bash
# Regenerates requirements.lock (netguard's runtime dependencies) and requirements-build.lock
# (the build backend, setuptools), every package pinned with its sha256 hashes, with pip-tools'
# pip-compile (`pip install pip-tools`). The Dockerfile installs from both with
# --require-hashes. Run it after changing dependencies in pyproject.toml, with the Python of the
# image (3.11, see the Dockerfile), and commit the result; tests/cli/test_image.py checks that
# the locks cover pyproject.toml.
#
# Resolved against PyPI itself, not a local mirror or find-links folder (PIP_CONFIG_FILE=/dev/null),
# so that the hashes are those of every file PyPI serves: the image builds on amd64 and arm64 alike.
set -euo pipefail
cd "$(dirname "$0")"
compile() {
    env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL PIP_CONFIG_FILE=/dev/null \
        CUSTOM_COMPILE_COMMAND="bash lock-requirements.sh" \
        pip-compile --quiet --generate-hashes --strip-extras --no-emit-index-url \
        --index-url https://pypi.org/simple "$@" pyproject.toml
}
compile --output-file requirements.lock
compile --all-build-deps --only-build-deps --allow-unsafe --output-file requirements-build.lock
