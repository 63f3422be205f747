"""The GraphQL ASGI app: GraphQL over HTTP and both WebSocket subscription protocols on /graphql."""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any, NoReturn

import orjson
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

from dsr_gateway.domain.principal import Principal
from dsr_gateway.graphql.context import Context
from dsr_gateway.http.auth import AuthenticationFailed, Authenticator
from dsr_gateway.http.middleware.request_id import request_id_var

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
BEARER_FORM = "Send credentials as 'Authorization: Bearer <token>'."
NOT_AN_OBJECT = 'Send the GraphQL request as a JSON object: {"query": "...", "variables": {...}}.'
TWO_CALLERS = "The handshake and connection_init name different callers."
# Dates and dataclasses go to `_refuse` (json.dumps has no default for them either).
STRICT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _refuse(value: object) -> NoReturn:
    raise TypeError(f"{type(value).__name__} is not JSON")


class GatewayGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view with our context and the GraphQL-over-HTTP status codes.

    A request that could not be executed at all (syntax or validation errors: `data` null and no
    error with a path) answers 400; clients that accept `application/graphql-response+json` get it.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        try:
            response = await self._run_json_post(request) or await self.run(request)
        except HTTPException as exc:
            response = _request_refused(request, exc)
        await response(scope, receive, send)

    async def _run_json_post(self, request: Request) -> Response | None:
        """The common request (one operation POSTed as JSON, a plain JSON answer) without the view's
        general dispatch: about a sixth of a `{ __typename }`'s time went to working out which of
        GET, batches, uploads, IDE pages and streamed answers this was. None: anything else, which
        `run` handles from the start (the body read here is kept by the request for it)."""
        if (
            request.method != "POST"
            or _media_type(request.headers.get("content-type", "")) != "application/json"
        ):
            return None
        data = self.parse_json(await request.body())  # not JSON: 400, as `run` answers
        if not isinstance(data, (dict, list)):
            # `run` fails on these with an AttributeError (a 500), whatever the client accepts.
            raise HTTPException(400, NOT_AN_OBJECT)
        if (
            isinstance(data, list)  # a batch: `run` refuses it (batching is off) with its message
            or _may_stream(request.headers.get("accept", ""))
            or not self._plain_answers
            or not _plain_operation(data)
        ):
            return None
        sub_response = await self.get_sub_response(request)
        context = await self.get_context(request, response=sub_response)
        root_value = await self.get_root_value(request)  # type: ignore[func-returns-value]
        result = await self.execute_single(
            request=request,
            request_adapter=self.request_adapter_class(request),
            sub_response=sub_response,
            context=context,
            root_value=root_value,
            request_data=GraphQLRequestData(
                query=data.get("query"),
                variables=data.get("variables"),
                operation_name=data.get("operationName"),
                extensions=data.get("extensions"),
                protocol="http",
            ),
        )
        response_data = await self.process_result(request, result)
        if result.errors:
            self._handle_errors(result.errors, response_data)
        return self.create_response(response_data, sub_response)

    @cached_property
    def _plain_answers(self) -> bool:
        # With incremental delivery (@defer/@stream) an answer may be streamed: `run` decides.
        return not self.schema.config.enable_experimental_incremental_execution

    async def on_ws_connect(self, context: Context) -> dict[str, Any] | None:
        """Credentials in `connection_init` (`{"Authorization": "Bearer <token>"}`), for browsers.

        A credential sent this way replaces an anonymous handshake; a bad one closes the connection
        (4403) with the reason. The acknowledgement says which kind of caller the connection is.
        """
        params = context.connection_params or {}
        key = next((k for k in ("Authorization", "authorization") if k in params), None)
        if key is None:
            return None
        credential = params[key]
        if not isinstance(credential, str) or not credential.strip():
            raise ConnectionRejectionError(
                {"message": "Send credentials as 'Authorization: Bearer <token>'."}
            )
        if " " not in credential.strip():
            credential = f"Bearer {credential.strip()}"
        authenticator: Authenticator = context.request.state.authenticator
        try:
            principal = await authenticator.authenticate(credential)
        except AuthenticationFailed as exc:
            raise ConnectionRejectionError({"message": str(exc)}) from exc
        if context.principal.id is not None and principal != context.principal:
            raise ConnectionRejectionError(
                {"message": "The handshake and connection_init name different callers."}
            )
        context.principal = principal
        return {"principal": principal.kind.value}

    def encode_json(self, data: object) -> str:
        # orjson: a batch check's 1,000 decisions encode in a tenth of json.dumps' time. Text, not bytes,
        # so WebSocket messages stay text frames. Values json would refuse (dates, dataclasses: a bug
        # upstream) are refused here too rather than quietly written out; an int past 64 bits falls back.
        try:
            return orjson.dumps(data, default=_refuse, option=STRICT).decode()
        except TypeError:
            return json.dumps(data, separators=(",", ":"))

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        wants_graphql_json = GRAPHQL_RESPONSE_JSON in request.headers.get("accept", "")
        sub_response.headers["content-type"] = (
            GRAPHQL_RESPONSE_JSON if wants_graphql_json else "application/json"
        )
        return sub_response

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        media_type = sub_response.headers["content-type"]
        del sub_response.headers["content-type"]
        if isinstance(response_data, dict) and _is_request_error(response_data):
            sub_response.status_code = 400
        response = super().create_response(response_data, sub_response)
        response.headers["content-type"] = media_type
        return response

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        state: Any = request.state
        return Context(
            request=request,
            response=response,
            principal=getattr(state, "principal", None) or Principal.anonymous(),
            services=state.services,
            request_id=request_id_var.get(),
        )


def _media_type(content_type: str) -> str:
    # As sent (Strawberry's `run` compares case-sensitively: `Application/JSON` is its 400, not ours).
    return content_type.split(";", 1)[0].strip()


def _may_stream(accept: str) -> bool:
    """Accepts a streamed answer (multipart subscriptions, server-sent events): `run`'s to decide."""
    accept = accept.lower()
    return "multipart/mixed" in accept or "text/event-stream" in accept


def _plain_operation(data: dict[str, Any]) -> bool:
    """The fields have the types `run` requires (anything else gets its 400 with its message)."""
    query, variables, extensions = data.get("query"), data.get("variables"), data.get("extensions")
    return (
        isinstance(query, str | None)
        and isinstance(variables, dict | None)
        and isinstance(extensions, dict | None)
    )


def _request_refused(request: Request, exc: HTTPException) -> Response:
    """A request refused before execution, as a GraphQL-shaped error (strawberry answers plain text).

    GraphQL over HTTP: a mutation sent with GET is 405 Method Not Allowed, with `Allow: POST`.
    """
    status, headers = exc.status_code, {}
    if isinstance(exc.__cause__, InvalidOperationTypeError) and request.method == "GET":
        status, headers = 405, {"Allow": "POST"}
    wants_graphql_json = GRAPHQL_RESPONSE_JSON in request.headers.get("accept", "")
    return JSONResponse(
        {"errors": [{"message": exc.reason}]},
        status_code=status,
        headers=headers,
        media_type=GRAPHQL_RESPONSE_JSON if wants_graphql_json else "application/json",
    )


def _is_request_error(response: GraphQLHTTPResponse) -> bool:
    errors: list[dict[str, Any]] = list(response.get("errors") or [])  # type: ignore[arg-type]
    return response.get("data") is None and bool(errors) and not any(e.get("path") for e in errors)


def make_graphql_app(schema: Any, *, development: bool) -> GatewayGraphQL:
    return GatewayGraphQL(
        schema,
        graphql_ide="graphiql" if development else None,
        allow_queries_via_get=True,
        keep_alive=True,
        keep_alive_interval=15,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
    )
