"""One-click unsubscribe (RFC 8058) and the Global Privacy Control well-known file.

`GET /unsubscribe/{token}` shows a small confirmation page with a button; `POST /unsubscribe/{token}` with
`List-Unsubscribe=One-Click` (what mail providers send, and what the button sends) withdraws, with no
cookies or sign-in: the signed token is the authority. Answers are idempotent, and a bad token is a
400/404 page, never a 500.

Lifespan state used (the composition root provides them):
- `link_signer`: a connectors.link_signing.LinkSigner;
- `unsubscribe_withdraw`: an async callable `(subject_external_id, purpose, topic, channel, *, method)`
  that records the withdrawal idempotently (the consent service). Absent: the POST answers 503.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Protocol
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from dsr_gateway.connectors.link_signing import LinkSigner
from dsr_gateway.domain.errors import Conflict, DomainError, NotFound
from dsr_gateway.domain.unsubscribe import InvalidLink, UnsubscribeClaims
from dsr_gateway.http.link_pages import page, refusal

logger = logging.getLogger("dsr_gateway.http.unsubscribe")

SIGNER_STATE = "link_signer"
WITHDRAW_STATE = "unsubscribe_withdraw"
RETRY_AFTER_SECONDS = "60"
METHOD = "UNSUBSCRIBE_LINK"
_MULTIPART_ONE_CLICK = re.compile(rb'name="?List-Unsubscribe"?\r\n(?:[^\r\n]+\r\n)*\r\nOne-Click\r\n')

# The confirmation page's button posts what a mail provider's one-click unsubscribe posts.
FORM = (
    '<form method="post">'
    '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
    '<button type="submit" style="padding:10px 18px;font-size:16px">Unsubscribe</button></form>'
)


class UnsubscribeWithdraw(Protocol):
    async def __call__(
        self, subject_external_id: str, purpose: str, topic: str | None, channel: str | None, *, method: str
    ) -> None: ...


def _read(request: Request) -> UnsubscribeClaims:
    signer: LinkSigner = request.state.link_signer
    return signer.read_unsubscribe(request.path_params["token"], datetime.now(UTC))


def _what(claims: UnsubscribeClaims) -> str:
    what = claims.purpose if claims.topic is None else f"{claims.purpose} ({claims.topic})"
    return what if claims.channel is None else f"{what} by {claims.channel.lower()}"


async def unsubscribe_page(request: Request) -> Response:
    try:
        claims = _read(request)
    except InvalidLink as exc:
        return refusal(exc)
    return page(
        "Unsubscribe?",
        f"Press the button to stop receiving: {_what(claims)}. You can opt in again at any time.",
        200,
        FORM,
    )


def _is_one_click(content_type: str, body: bytes) -> bool:
    if content_type.startswith("multipart/form-data"):
        return _MULTIPART_ONE_CLICK.search(body) is not None
    values = parse_qs(body.decode("latin-1"), keep_blank_values=True)
    return values.get("List-Unsubscribe") == ["One-Click"]


async def unsubscribe_post(request: Request) -> Response:
    try:
        claims = _read(request)
    except InvalidLink as exc:
        return refusal(exc)
    if not _is_one_click(request.headers.get("content-type", ""), await request.body()):
        return page("Nothing was changed", "Send List-Unsubscribe=One-Click to unsubscribe.", 400)
    withdraw: UnsubscribeWithdraw | None = getattr(request.state, WITHDRAW_STATE, None)
    if withdraw is None:
        logger.error("unsubscribe: no `%s` in the lifespan state; nothing recorded", WITHDRAW_STATE)
        return page("Please try again later", "We could not record your choice just now.", 503)
    try:
        await withdraw(
            claims.subject_external_id, claims.purpose, claims.topic, claims.channel, method=METHOD
        )
    except NotFound:
        # The purpose (or subject) is gone: there is nothing left to unsubscribe from.
        return page("You are unsubscribed", f"You will not receive {_what(claims)} any more.", 200)
    except Conflict:
        # Held by a longer change (an import) or given up for a concurrent one: nothing recorded, and the
        # same click works later. 503 with Retry-After, so a mail provider's one-click POST is retried
        # (a 4xx would end it).
        response = page("Please try again in a minute", "We could not record your choice just now.", 503)
        response.headers["Retry-After"] = RETRY_AFTER_SECONDS
        return response
    except DomainError as exc:
        return page("Nothing was changed", exc.message, 400)
    except Exception:
        logger.exception("unsubscribe: recording the withdrawal failed")
        return page("Please try again later", "We could not record your choice just now.", 503)
    return page("You are unsubscribed", f"You will not receive {_what(claims)} any more.", 200)


def make_gpc_json(last_update: date) -> Callable[[Request], Awaitable[Response]]:
    """`/.well-known/gpc.json`: this site honours Global Privacy Control signals."""

    async def gpc_json(request: Request) -> Response:
        return JSONResponse(
            {"gpc": True, "lastUpdate": last_update.isoformat()}, headers={"Cache-Control": "max-age=86400"}
        )

    return gpc_json
