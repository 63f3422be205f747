"""One permission class per question, each with a message a person can act on."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from dsr_gateway.graphql.context import Info

# The code query errors carry for a denial (graphql/errors.py query_error uses the same).
FORBIDDEN: dict[str, Any] = {"code": "FORBIDDEN"}


class IsStaff(BasePermission):
    error_extensions = FORBIDDEN
    message = "Only staff (agents and administrators) may read this."

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return info.context.principal.is_staff


class IsAdmin(BasePermission):
    error_extensions = FORBIDDEN
    message = "Only an administrator may do this."

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return info.context.principal.is_admin


class IsSignedIn(BasePermission):
    error_extensions = FORBIDDEN
    message = "Sign in to read this."

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return info.context.principal.id is not None
