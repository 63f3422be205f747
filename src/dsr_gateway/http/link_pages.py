"""The small HTML pages behind signed links (unsubscribe, reconfirm): one page shell, its headers, and
the answer to a link that does not work (404 when broken or forged, 400 when expired or of another type).
"""

from __future__ import annotations

import html

from starlette.responses import HTMLResponse

from dsr_gateway.domain.unsubscribe import InvalidLink, LinkExpired, LinkForged, LinkMalformed

HEADERS = {
    "Cache-Control": "no-store",
    # The token is in the URL: never pass it on to another site.
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}


def page(title: str, message: str, status: int, form: str = "") -> HTMLResponse:
    """A page with a title, a message and, on a confirmation page, the `form` that confirms."""
    body = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head>"
        '<body style="font-family:sans-serif;max-width:520px;margin:48px auto;padding:0 9px">'
        f'<h1 style="font-size:22px">{html.escape(title)}</h1><p>{html.escape(message)}</p>{form}'
        "</body></html>"
    )
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def refusal(exc: InvalidLink) -> HTMLResponse:
    status = 404 if isinstance(exc, (LinkMalformed, LinkForged)) else 400
    title = "This link has expired" if isinstance(exc, LinkExpired) else "This link does not work"
    return page(title, exc.message, status)
