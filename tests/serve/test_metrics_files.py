"""webhook/serve/metrics.py WorkerFiles: a scrape while a worker boots. The booting worker's
metrics files exist, empty, for a moment before prometheus_client sizes them; reading one failed
(struct.error) and /metrics answered 500."""

from __future__ import annotations

import os
import struct
import subprocess
import sys

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from webhook.serve.metrics import WorkerFiles

WRITER = """
from prometheus_client import Counter
Counter("netguard_test_calls", "calls").inc(3)
"""


@pytest.fixture
def folder(tmp_path):
    """A metrics folder with one worker's counter in it, and a booting worker's empty file."""
    subprocess.run([sys.executable, "-c", WRITER], check=True, timeout=60,
                   env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    (tmp_path / "gauge_livemax_424242.db").touch()
    return tmp_path


def test_prometheus_clients_own_collector_fails_on_the_empty_file(folder):
    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(folder))
    with pytest.raises(struct.error):
        generate_latest(registry)


def test_worker_files_skip_it_and_report_the_rest(folder):
    registry = CollectorRegistry()
    WorkerFiles(registry, str(folder))
    assert b"netguard_test_calls_total 3.0" in generate_latest(registry)
