"""argparse types for `netguard serve`: a bad value is refused by argparse, which names the flag
(`netguard serve: error: argument --workers: must be a whole number from 1 to 64, got '0'`),
never by a traceback or a server that starts with nothing to serve."""

from __future__ import annotations

import argparse
import ipaddress
import re
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


_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?")


def secret_reference(text: str) -> tuple[str, str]:
    """[NAMESPACE/]NAME of a Secret: ("", NAME) when the namespace is left to the pod's."""
    namespace, _, name = text.rpartition("/")
    if namespace and not (len(namespace) <= 63 and _LABEL.fullmatch(namespace)):
        raise argparse.ArgumentTypeError(f"the namespace must be a DNS-1123 label, got {namespace!r} in {text!r}")
    if not (len(name) <= 253 and _SUBDOMAIN.fullmatch(name)):
        raise argparse.ArgumentTypeError(f"the Secret name must be a DNS-1123 subdomain (lowercase "
                                         f"alphanumerics, '-', '.'), got {name!r} in {text!r}")
    return namespace, name
