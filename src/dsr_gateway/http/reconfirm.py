"""One-click reconfirmation links from reminders and notice-change messages.

`GET /reconfirm/{token}` shows a confirmation page with a button (a GET changes nothing, so link
scanners confirm nothing); `POST /reconfirm/{token}` records a RECONFIRM event, without cookies or
sign-in: the signed token is the authority. A broken or forged token is a 404 page; an expired one, or
a token of another type (an unsubscribe link), a 400 page; never a 500.

Lifespan state used: `link_signer`, and `reconfirm_consent`, an async callable
`(subject_external_id, purpose) -> int` (the consent lifecycle service).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from dsr_gateway.connectors.link_signing import LinkSigner
from dsr_gateway.domain.errors import DomainError
from dsr_gateway.domain.unsubscribe import InvalidLink, ReconfirmClaims
from dsr_gateway.http.link_pages import page, refusal

logger = logging.getLogger("dsr_gateway.http.reconfirm")
RECONFIRM_STATE = "reconfirm_consent"
FORM = (
    '<form method="post"><button type="submit" style="padding:10px 18px;font-size:16px">'
    "Yes, keep my permission</button></form>"
)
ReconfirmConsent = Callable[[str, str], Awaitable[int]]


def _read(request: Request) -> ReconfirmClaims:
    signer: LinkSigner = request.state.link_signer
    return signer.read_reconfirm(request.path_params["token"], datetime.now(UTC))


async def reconfirm_page(request: Request) -> Response:
    try:
        claims = _read(request)
    except InvalidLink as exc:
        return refusal(exc)
    return page(
        "Keep your permission?",
        f"Press the button to confirm that we may go on with: {claims.purpose}. "
        "You can withdraw it at any time.",
        200,
        FORM,
    )


async def reconfirm_post(request: Request) -> Response:
    try:
        claims = _read(request)
    except InvalidLink as exc:
        return refusal(exc)
    reconfirm: ReconfirmConsent | None = getattr(request.state, RECONFIRM_STATE, None)
    if reconfirm is None:
        logger.error("reconfirm: no `%s` in the lifespan state; nothing recorded", RECONFIRM_STATE)
        return page("Please try again later", "We could not record your choice just now.", 503)
    try:
        await reconfirm(claims.subject_external_id, claims.purpose)
    except DomainError as exc:
        return page("Nothing was changed", exc.message, 409)
    except Exception:
        logger.exception("reconfirm: recording the reconfirmation failed")
        return page("Please try again later", "We could not record your choice just now.", 503)
    return page("Thank you", f"Your permission for {claims.purpose} is confirmed.", 200)
