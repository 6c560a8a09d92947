"""What each gunicorn worker does to its heap once its app is built (webhook/serve/server.py)."""

from __future__ import annotations

import gc

import pytest

from webhook.serve.server import GC_YOUNG_THRESHOLD, NetguardServer, ServeOptions


@pytest.fixture
def restored_gc():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_a_worker_freezes_what_it_built_and_collects_the_young_less_often(restored_gc, tmp_path):
    built = []

    def factory():
        app = {"routes": []}  # holds a container, so the collector tracks it
        built.append(app)
        return app

    gc.unfreeze()
    server = NetguardServer(ServeOptions(certs=tmp_path), factory)
    _, older, oldest = gc.get_threshold()
    app = server.load()  # what gunicorn calls in each worker after the fork
    assert app is built[0] and gc.is_tracked(app)
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, older, oldest)
    # The app is among what no collection walks any more: the permanent generation holds it.
    assert gc.get_freeze_count() > 0
    assert not any(obj is app for generation in range(3) for obj in gc.get_objects(generation))
