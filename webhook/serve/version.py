"""netguard's version: the installed distribution's, whose one source is pyproject.toml."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _installed


def version() -> str:
    try:
        return _installed("netguard")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"
