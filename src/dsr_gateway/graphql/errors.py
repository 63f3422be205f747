"""Expected failures as schema types, mapped from domain errors in this one place."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError

from dsr_gateway.domain.errors import (
    Conflict,
    DomainError,
    IllegalTransition,
    NotFound,
    PermissionDenied,
    StaleVersion,
    ValidationFailed,
)


@strawberry.interface(description="An expected failure; `message` says what to do about it.")
class UserError:
    message: str


@strawberry.type(description="One input field and what is wrong with it.")
class FieldError:
    field: str = strawberry.field(description="Dotted path of the input field, e.g. `purposes.0.key`.")
    message: str


@strawberry.type
class ValidationError(UserError):
    fields: list[FieldError]


@strawberry.type
class NotFoundError(UserError):
    kind: str
    key: str


@strawberry.type
class PermissionDeniedError(UserError):
    pass


@strawberry.type
class ConflictError(UserError):
    current_status: str | None = None
    allowed_actions: list[str] = strawberry.field(default_factory=list)
    current_version: int | None = None


def error_from_domain(exc: DomainError) -> UserError:
    """The union member for a domain error. Unknown kinds are a bug: let them be masked and logged."""
    if isinstance(exc, ValidationFailed):
        return ValidationError(
            message=exc.message, fields=[FieldError(field=p.field, message=p.message) for p in exc.problems]
        )
    if isinstance(exc, NotFound):
        return NotFoundError(message=exc.message, kind=exc.kind, key=exc.key)
    if isinstance(exc, PermissionDenied):
        return PermissionDeniedError(message=exc.message)
    if isinstance(exc, IllegalTransition):
        return ConflictError(
            message=exc.message, current_status=exc.current_status, allowed_actions=list(exc.allowed_actions)
        )
    if isinstance(exc, StaleVersion):
        return ConflictError(message=exc.message, current_version=exc.actual)
    if isinstance(exc, Conflict):
        return ConflictError(message=exc.message)
    raise exc


def query_error(exc: DomainError) -> GraphQLError:
    """A domain error raised from a query (which has no union result), as a GraphQL error with a code."""
    codes = {ValidationFailed: "BAD_USER_INPUT", PermissionDenied: "FORBIDDEN", NotFound: "NOT_FOUND"}
    extensions: dict[str, object] = {"code": codes.get(type(exc), "BAD_REQUEST")}
    if isinstance(exc, ValidationFailed):
        extensions["fields"] = [{"field": p.field, "message": p.message} for p in exc.problems]
    return GraphQLError(exc.message, extensions=extensions)
