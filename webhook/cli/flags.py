"""argparse types for `netguard serve`: a bad value is refused by argparse, which names the flag
(`netguard serve: error: argument --workers: must be a whole number from 1 to 64, got '0'`),
never by a traceback or a server that starts with nothing to serve."""

from __future__ import annotations

import argparse
import ipaddress
from typing import Callable


def whole_number(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}, got {text!r}")
        return value
    return parse


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text} must be more than 0 and at most 3600 seconds")
    return value


def bind_address(text: str) -> str:
    """HOST:PORT, [IPv6]:PORT or :PORT (every address), with a port from 1 to 65535."""
    host, colon, port = text.rpartition(":")
    if not colon:
        raise argparse.ArgumentTypeError(f"must be HOST:PORT, got {text!r}")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"the port must be a number from 1 to 65535, got {port!r} in {text!r}")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise argparse.ArgumentTypeError(f"{host} is not an IPv6 address in {text!r}") from None
    elif ":" in host:
        raise argparse.ArgumentTypeError(f"write an IPv6 host in brackets, [{host}]:{port}, got {text!r}")
    return text
