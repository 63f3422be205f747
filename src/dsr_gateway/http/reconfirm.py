"""One-click reconfirmation links from reminders and notice-change messages.

`GET /reconfirm/{token}` shows a confirmation page with a button (a GET changes nothing, so link
scanners confirm nothing); `POST /reconfirm/{token}` records a RECONFIRM event, without cookies or
sign-in: the signed token is the authority. A broken or forged token is a 404 page; an expired one, or
a token of another type (an unsubscribe link), a 400 page; never a 500.

Lifespan state used: `link_signer`, and `reconfirm_consent`, an async callable
`(subject_external_id, purpose) -> int` (the consent lifecycle service).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from dsr_gateway.connectors.link_signing import LinkSigner
from dsr_gateway.domain.errors import DomainError
from dsr_gateway.domain.unsubscribe import (
    InvalidLink,
    LinkExpired,
    LinkForged,
    LinkMalformed,
    ReconfirmClaims,
)
from dsr_gateway.http.unsubscribe import HEADERS

logger = logging.getLogger("dsr_gateway.http.reconfirm")
RECONFIRM_STATE = "reconfirm_consent"
ReconfirmConsent = Callable[[str, str], Awaitable[int]]


def _page(title: str, message: str, status: int, form: bool = False) -> HTMLResponse:
    button = (
        '<form method="post"><button type="submit" style="padding:10px 18px;font-size:16px">'
        "Yes, keep my permission</button></form>"
        if form
        else ""
    )
    body = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head>"
        '<body style="font-family:sans-serif;max-width:520px;margin:48px auto;padding:0 9px">'
        f'<h1 style="font-size:22px">{html.escape(title)}</h1><p>{html.escape(message)}</p>{button}'
        "</body></html>"
    )
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def _read(request: Request) -> ReconfirmClaims:
    signer: LinkSigner = request.state.link_signer
    return signer.read_reconfirm(request.path_params["token"], datetime.now(UTC))


def _refusal(exc: InvalidLink) -> HTMLResponse:
    status = 404 if isinstance(exc, (LinkMalformed, LinkForged)) else 400
    title = "This link has expired" if isinstance(exc, LinkExpired) else "This link does not work"
    return _page(title, exc.message, status)


async def reconfirm_page(request: Request) -> Response:
    try:
        claims = _read(request)
    except InvalidLink as exc:
        return _refusal(exc)
    return _page(
        "Keep your permission?",
        f"Press the button to confirm that we may go on with: {claims.purpose}. "
        "You can withdraw it at any time.",
        200,
        form=True,
    )


async def reconfirm_post(request: Request) -> Response:
    try:
        claims = _read(request)
    except InvalidLink as exc:
        return _refusal(exc)
    reconfirm: ReconfirmConsent | None = getattr(request.state, RECONFIRM_STATE, None)
    if reconfirm is None:
        logger.error("reconfirm: no `%s` in the lifespan state; nothing recorded", RECONFIRM_STATE)
        return _page("Please try again later", "We could not record your choice just now.", 503)
    try:
        await reconfirm(claims.subject_external_id, claims.purpose)
    except DomainError as exc:
        return _page("Nothing was changed", exc.message, 409)
    except Exception:
        logger.exception("reconfirm: recording the reconfirmation failed")
        return _page("Please try again later", "We could not record your choice just now.", 503)
    return _page("Thank you", f"Your permission for {claims.purpose} is confirmed.", 200)
