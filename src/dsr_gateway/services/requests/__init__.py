"""Privacy-rights requests: intake and verification, workflow actions, the queue, the SLA sweep."""

from dsr_gateway.services.requests.actions import RequestActionService
from dsr_gateway.services.requests.clock import SlaClock
from dsr_gateway.services.requests.intake import RequestIntakeService, SubmitCommand, Submitted
from dsr_gateway.services.requests.queue import RequestPage, RequestQueryService, RequestView
from dsr_gateway.services.requests.sweep import SlaSweepService, SweepResult

__all__ = [
    "RequestActionService",
    "RequestIntakeService",
    "RequestPage",
    "RequestQueryService",
    "RequestView",
    "SlaClock",
    "SlaSweepService",
    "SubmitCommand",
    "Submitted",
    "SweepResult",
]
