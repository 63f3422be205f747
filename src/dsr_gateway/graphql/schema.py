"""Schema assembly: the root types from each area, the limits, and error masking."""

from __future__ import annotations

import logging
from collections.abc import Callable

import strawberry
from graphql import GraphQLError
from strawberry.exceptions import StrawberryGraphQLError
from strawberry.extensions import (
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from dsr_gateway.graphql.audit import AuditMutation, AuditQuery
from dsr_gateway.graphql.catalogue import CatalogueMutation, CatalogueQuery, CatalogueSubscription
from dsr_gateway.graphql.comms import CommsMutation, CommsQuery
from dsr_gateway.graphql.consent import ConsentMutation, ConsentQuery
from dsr_gateway.graphql.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from dsr_gateway.graphql.requests import RequestMutation, RequestQuery, RequestSubscription
from dsr_gateway.graphql.subjects import SubjectQuery
from dsr_gateway.graphql.webhooks import WebhookMutation, WebhookQuery

logger = logging.getLogger("dsr_gateway.graphql")
MASKED_MESSAGE = "Unexpected error; it was logged with this request's id."


@strawberry.type
class Query(CatalogueQuery, SubjectQuery, ConsentQuery, RequestQuery, AuditQuery, WebhookQuery, CommsQuery):
    pass


@strawberry.type
class Mutation(
    CatalogueMutation, ConsentMutation, RequestMutation, AuditMutation, WebhookMutation, CommsMutation
):
    pass


@strawberry.type
class Subscription(CatalogueSubscription, RequestSubscription):
    pass


def _is_expected(error: GraphQLError) -> bool:
    """Errors of the request itself (syntax, validation, a permission class) are shown; others masked."""
    original = error.original_error
    return original is None or isinstance(original, (GraphQLError, StrawberryGraphQLError))


class GatewaySchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log only what went wrong on our side, with its traceback; a client's bad query is no error."""
        for error in errors:
            if not _is_expected(error):
                logger.error("unexpected error at %s", error.path, exc_info=error.original_error)


def build_schema(
    *,
    production: bool = False,
    max_depth: int = 12,
    max_aliases: int = 30,
    max_tokens: int = 5000,
) -> strawberry.Schema:
    # Factories, so each request gets fresh extension state; the caches live at module level.
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        lambda: QueryDepthLimiter(max_depth=max_depth),
        lambda: MaxAliasesLimiter(max_alias_count=max_aliases),
        lambda: MaxTokensLimiter(max_token_count=max_tokens),
        lambda: ParserCache(maxsize=512),
        lambda: ValidationCache(maxsize=512),
        lambda: MaskErrors(should_mask_error=lambda e: not _is_expected(e), error_message=MASKED_MESSAGE),
    ]
    if production:
        extensions.append(DisableIntrospection)
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[ValidationError, NotFoundError, PermissionDeniedError, ConflictError],
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=production),
    )
