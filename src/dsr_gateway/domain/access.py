"""Who may do what: the questions every use case asks before it acts."""

from __future__ import annotations

from dsr_gateway.domain.errors import PermissionDenied
from dsr_gateway.domain.principal import Principal


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise PermissionDenied("Only an administrator may do this.")


def require_staff(principal: Principal) -> None:
    if not principal.is_staff:
        raise PermissionDenied("Only staff (agents and administrators) may do this.")


def may_read_subject(principal: Principal, external_id: str, scope: str) -> bool:
    """A subject reads only itself; staff read anyone; API clients need the scope."""
    return principal.is_subject(external_id) or principal.is_staff or principal.has_scope(scope)


def require_subject_access(principal: Principal, external_id: str, scope: str) -> None:
    # The same words whether or not the subject exists, so a denial reveals nothing.
    if not may_read_subject(principal, external_id, scope):
        raise PermissionDenied("You may not see or change this subject's data.")
