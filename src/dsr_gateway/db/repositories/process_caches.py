"""Small in-process caches that spare the consent write path a statement or three per call.

Each cache is per engine (a test's fresh database, or a second database in one process, never shares
entries) and holds only what is safe to keep:

- **Active webhook subscriptions** (read by every consent change to enqueue `consent.changed`): kept for
  `SUBSCRIPTIONS_TTL` seconds. A create or a deactivation in this process clears the entry at once and
  again after its commit; one made by another process is seen at most `SUBSCRIPTIONS_TTL` seconds later
  (until then a new subscription misses that process's events, and a stopped one may get deliveries,
  which the sender gives up like any delivery of an inactive subscription).
- **Published notices by version**: a notice version is never updated once published (the repository has
  no such method), so a version found committed is kept for the life of the process (bounded).
- **Purposes by (key, version, last material change)** (consent_rows.cached_purpose): every update of a
  purpose bumps `version` and a material notice change sets `last_material_version`, so a row with the
  same three is the same purpose; only parsing is saved, the row is still read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any
from weakref import WeakKeyDictionary

from dsr_gateway.domain.notices import PrivacyNotice
from dsr_gateway.domain.purposes import Purpose
from dsr_gateway.domain.webhooks import WebhookSubscription

SUBSCRIPTIONS_TTL = 5.0
MAX_NOTICES = 256


class EngineCaches:
    def __init__(self) -> None:
        self.subscriptions: tuple[float, Sequence[WebhookSubscription]] | None = None
        self.notices: dict[int, PrivacyNotice] = {}
        self.purposes: dict[tuple[Any, ...], Purpose] = {}


_CACHES: WeakKeyDictionary[Any, EngineCaches] = WeakKeyDictionary()


def caches_for(bind: Any) -> EngineCaches | None:
    """The caches of the session's engine (None when the session has no engine: no caching)."""
    if bind is None:
        return None
    engine = getattr(bind, "sync_engine", bind)
    found = _CACHES.get(engine)
    if found is None:
        found = _CACHES[engine] = EngineCaches()
    return found


def cached_subscriptions(
    caches: EngineCaches | None, clock: Callable[[], float] = time.monotonic
) -> Sequence[WebhookSubscription] | None:
    if caches is None or caches.subscriptions is None:
        return None
    taken, subscriptions = caches.subscriptions
    return subscriptions if clock() - taken < SUBSCRIPTIONS_TTL else None


def remember_subscriptions(caches: EngineCaches | None, subscriptions: Sequence[WebhookSubscription]) -> None:
    if caches is not None:
        caches.subscriptions = (time.monotonic(), tuple(subscriptions))


def forget_subscriptions(caches: EngineCaches | None) -> None:
    if caches is not None:
        caches.subscriptions = None


def remember_notice(caches: EngineCaches | None, notice: PrivacyNotice) -> None:
    if caches is None:
        return
    if len(caches.notices) >= MAX_NOTICES:
        caches.notices.clear()
    caches.notices[notice.version] = notice
