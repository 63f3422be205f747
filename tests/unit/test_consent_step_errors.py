"""The fulfilment step that records a request's consent change: what the ledger's refusals become. A write
the ledger could not make now (the subject held by an import past the lock timeout, or given up for
concurrent writes) is tried again later; a refusal of the change itself is not."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from dsr_gateway.domain.errors import Conflict, HeldTooLong, ValidationFailed
from dsr_gateway.domain.fulfilment import Phase
from dsr_gateway.services.fulfilment.phases import PhaseRunner, StepContext
from dsr_gateway.services.fulfilment_ports import (
    ConnectorError,
    PermanentConnectorError,
    RetryableConnectorError,
)


class Ledger:
    """A consent service whose withdrawals fail with `error`."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def withdraw(self, principal: Any, request: Any) -> Any:
        raise self.error


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        (HeldTooLong(), RetryableConnectorError),
        (Conflict("given up for concurrent writes"), RetryableConnectorError),
        (ValidationFailed.single("purpose", "no purpose 'gone'"), PermanentConnectorError),
    ],
)
async def test_a_ledger_refusal_is_retried_only_when_it_may_pass_later(
    error: Exception, raised: type[ConnectorError]
) -> None:
    runner = PhaseRunner(
        {}, [], cast(Any, None), cast(Any, Ledger(error)), cast(Any, None), "x", cast(Any, None)
    )
    request = SimpleNamespace(id="req-1", subject_external_id="customer-1", details={"purposes": ["email"]})
    context = StepContext(cast(Any, request), cast(Any, None), (), ())
    step = SimpleNamespace(phase=Phase.CONSENT, system="gateway", key="consent:gateway")

    with pytest.raises(raised) as caught:
        await runner.run(cast(Any, step), context)

    assert caught.value.retryable is (raised is RetryableConnectorError)
