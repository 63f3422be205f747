"""Garbage-collector settings for the long-running processes (the server, the importer)."""

from __future__ import annotations

import gc

# Young-generation collections every 50,000 allocations instead of 700: a GraphQL request allocates
# thousands of short-lived objects, and the default thresholds spent a quarter of a consentCheck's time in
# the collector (measured with scripts/bench/consent_check.py; p99 fell with it); the importer's chunks of
# rows spent a fifth of its CPU there. The oldest generation keeps its default ratio (10), so cyclic
# garbage of long-lived work (exports, the worker) is still collected every ~10 million allocations.
GC_THRESHOLDS = (50_000, 20, 10)


def tune_garbage_collector() -> None:
    """Move everything alive after start-up (modules, schema, tables) out of the collector's sight, and
    collect young objects less often. For server and command processes only; tests keep the defaults."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
