"""The server process tunes the garbage collector once its start-up objects exist."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from dsr_gateway.gc_tuning import GC_THRESHOLDS, tune_garbage_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    tune_garbage_collector()
    assert gc.get_freeze_count() > 1000  # modules, the schema, the tables
    assert gc.get_threshold() == GC_THRESHOLDS
    assert GC_THRESHOLDS[0] > 700  # the interpreter's default young threshold
