"""Schema assembly: the root types from each area, the limits, and error masking."""

from __future__ import annotations

import logging
from collections.abc import Callable

import strawberry
from graphql import GraphQLError
from strawberry.exceptions import StrawberryGraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from dsr_gateway.graphql.audit import AuditMutation, AuditQuery
from dsr_gateway.graphql.audit_trail import AuditTrailQuery
from dsr_gateway.graphql.catalogue import CatalogueMutation, CatalogueQuery, CatalogueSubscription
from dsr_gateway.graphql.comms import CommsMutation, CommsQuery
from dsr_gateway.graphql.consent import ConsentMutation, ConsentQuery
from dsr_gateway.graphql.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from dsr_gateway.graphql.execution import GatewayExecutionContext
from dsr_gateway.graphql.extension_hooks import HookRunner
from dsr_gateway.graphql.fulfilment import FulfilmentMutation, FulfilmentQuery
from dsr_gateway.graphql.observability import ObservabilityExtension
from dsr_gateway.graphql.pipeline import BoundedCache, RequestPipeline, validation_rules
from dsr_gateway.graphql.reports import ReportQuery
from dsr_gateway.graphql.requests import RequestMutation, RequestQuery, RequestSubscription
from dsr_gateway.graphql.subjects import SubjectQuery
from dsr_gateway.graphql.webhooks import WebhookMutation, WebhookQuery

logger = logging.getLogger("dsr_gateway.graphql")
MASKED_MESSAGE = "Unexpected error; it was logged with this request's id."


@strawberry.type
class Query(
    CatalogueQuery,
    SubjectQuery,
    ConsentQuery,
    RequestQuery,
    AuditQuery,
    WebhookQuery,
    FulfilmentQuery,
    ReportQuery,
    AuditTrailQuery,
    CommsQuery,
):
    pass


@strawberry.type
class Mutation(
    CatalogueMutation,
    ConsentMutation,
    RequestMutation,
    AuditMutation,
    WebhookMutation,
    FulfilmentMutation,
    CommsMutation,
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
    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        return HookRunner(execution_context=execution_context, extensions=extensions)

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
    # One extension made per request (fresh state); its rule classes and caches are made once, here.
    rules = validation_rules(max_depth=max_depth, max_aliases=max_aliases, introspection=not production)
    documents, validations = BoundedCache(), BoundedCache()

    def pipeline() -> SchemaExtension:
        return RequestPipeline(
            rules=rules,
            max_tokens=max_tokens,
            documents=documents,
            validations=validations,
            should_mask_error=lambda e: not _is_expected(e),
            error_message=MASKED_MESSAGE,
        )

    # Operation metrics (dsr_graphql_operations_total ...) wrap every request.
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        pipeline,
        ObservabilityExtension,
    ]
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[ValidationError, NotFoundError, PermissionDeniedError, ConflictError],
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=production),
        execution_context_class=GatewayExecutionContext,
    )
