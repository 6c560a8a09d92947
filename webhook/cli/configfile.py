"""The configuration file given with --config: read, then parsed by webhook/core/config.py."""

from __future__ import annotations

import os

from webhook.core.config import ConfigError, parse_settings
from webhook.core.settings import Settings, default_settings


def load_settings(path: str | os.PathLike) -> Settings:
    """Read, parse and validate the configuration file at `path`."""
    return parse_settings(read_config(path), os.fsdecode(path))


def read_config(path: str | os.PathLike) -> str:
    """The text of the configuration file at `path`; a ConfigError names the file and why not."""
    source = os.fsdecode(path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ConfigError(source, 0, "", "cannot read configuration: file not found") from None
    except OSError as exc:
        raise ConfigError(source, 0, "", f"cannot read configuration: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            source, 0, "", f"cannot read configuration: not UTF-8 text (byte {exc.start}: {exc.reason})"
        ) from None
    return text


def load_settings_or_default(path: str | os.PathLike | None) -> Settings:
    """The settings in `path`, or the defaults when no file is given (every command's --config)."""
    return load_settings(path) if path else default_settings()
