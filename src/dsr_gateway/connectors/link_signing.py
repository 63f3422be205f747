"""Opaque, URL-safe, HMAC-SHA256-signed tokens for links in messages (unsubscribe, reconfirm).

Token bytes, base64url without padding:

    version (1) | key id (1) | link type (1) | expires, Unix seconds, 0 = never (4) | claims | HMAC (32)

The HMAC covers everything before it, with a key derived from `DSR_HMAC_KEY` for links only, so a token
cannot be altered, moved to another subject or purpose, or used as another type of link. The key id
lets keys rotate: sign with the current one, verify with any still configured.

The claims are signed, not encrypted: whoever holds a link can decode the subject's external id and the
purpose from it. Use pseudonymous external ids (never an email address) for subjects.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import quote

from dsr_gateway.domain.unsubscribe import (
    LinkExpired,
    LinkForged,
    LinkMalformed,
    LinkMismatch,
    LinkType,
    LinkWrongType,
    ReconfirmClaims,
    UnsubscribeClaims,
    decode_fields,
    encode_fields,
)

FORMAT_VERSION = 1
HEADER_BYTES = 7
MAC_BYTES = 32
TOKEN_MAX_CHARS = 4096
NEVER = 0


def _derive(master: str) -> bytes:
    return hmac.new(master.encode(), b"dsr-gateway/signed-links/v1", hashlib.sha256).digest()


class LinkSigner:
    def __init__(self, keys: Mapping[int, str], current_key_id: int) -> None:
        if current_key_id not in keys:
            raise ValueError(f"the current link key id {current_key_id} has no key")
        if any(not 0 <= k <= 255 for k in keys):
            raise ValueError("link key ids are 0-255")
        if any(not v for v in keys.values()):
            raise ValueError("a link key is empty")
        self._keys = {k: _derive(v) for k, v in keys.items()}
        self._current = current_key_id

    # --- the two link kinds -------------------------------------------------------------------

    def unsubscribe_token(self, claims: UnsubscribeClaims, expires_at: datetime | None = None) -> str:
        return self.sign(LinkType.UNSUBSCRIBE, claims.fields(), expires_at)

    def read_unsubscribe(
        self,
        token: str,
        now: datetime,
        expected_subject: str | None = None,
        expected_purpose: str | None = None,
    ) -> UnsubscribeClaims:
        subject, purpose, topic, channel = self.verify(token, LinkType.UNSUBSCRIBE, now, 4)
        if subject is None or purpose is None:
            raise LinkMalformed()
        _expect(subject, purpose, expected_subject, expected_purpose)
        return UnsubscribeClaims(subject, purpose, topic, channel)

    def reconfirm_token(self, claims: ReconfirmClaims, expires_at: datetime | None = None) -> str:
        return self.sign(LinkType.RECONFIRM, claims.fields(), expires_at)

    def read_reconfirm(
        self,
        token: str,
        now: datetime,
        expected_subject: str | None = None,
        expected_purpose: str | None = None,
    ) -> ReconfirmClaims:
        subject, purpose = self.verify(token, LinkType.RECONFIRM, now, 2)
        if subject is None or purpose is None:
            raise LinkMalformed()
        _expect(subject, purpose, expected_subject, expected_purpose)
        return ReconfirmClaims(subject, purpose)

    # --- the format -------------------------------------------------------------------------------

    def sign(self, link_type: LinkType, fields: Sequence[str | None], expires_at: datetime | None) -> str:
        expires = NEVER if expires_at is None else int(expires_at.timestamp())
        body = (
            bytes([FORMAT_VERSION, self._current, int(link_type)])
            + expires.to_bytes(4, "big")
            + encode_fields(fields)
        )
        mac = hmac.new(self._keys[self._current], body, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(body + mac).rstrip(b"=").decode()

    def verify(self, token: str, link_type: LinkType, now: datetime, count: int) -> tuple[str | None, ...]:
        """The claims of an authentic, unexpired token of `link_type`, or a typed InvalidLink."""
        if len(token) > TOKEN_MAX_CHARS:
            raise LinkMalformed()
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError) as exc:
            raise LinkMalformed() from exc
        if len(raw) < HEADER_BYTES + MAC_BYTES or raw[0] != FORMAT_VERSION:
            raise LinkMalformed()
        body, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
        key = self._keys.get(body[1])
        if key is None or not hmac.compare_digest(mac, hmac.new(key, body, hashlib.sha256).digest()):
            raise LinkForged()
        if body[2] != link_type:
            raise LinkWrongType()
        expires = int.from_bytes(body[3:7], "big")
        if expires != NEVER and now.astimezone(UTC).timestamp() >= expires:
            raise LinkExpired()
        return decode_fields(body[HEADER_BYTES:], count)


def _expect(subject: str, purpose: str, expected_subject: str | None, expected_purpose: str | None) -> None:
    if (expected_subject is not None and subject != expected_subject) or (
        expected_purpose is not None and purpose != expected_purpose
    ):
        raise LinkMismatch()


ONE_CLICK = "List-Unsubscribe=One-Click"


class UnsubscribeLinks:
    """Absolute links and RFC 8058 headers for messages; `public_url` is the gateway's public base URL."""

    def __init__(self, signer: LinkSigner, public_url: str, reconfirm_path: str = "/reconfirm/") -> None:
        self._signer = signer
        self._base = public_url.rstrip("/")
        self._reconfirm_path = reconfirm_path

    def unsubscribe_url(self, claims: UnsubscribeClaims, expires_at: datetime | None = None) -> str:
        return f"{self._base}/unsubscribe/{quote(self._signer.unsubscribe_token(claims, expires_at))}"

    def reconfirm_url(self, claims: ReconfirmClaims, expires_at: datetime | None = None) -> str:
        return f"{self._base}{self._reconfirm_path}{quote(self._signer.reconfirm_token(claims, expires_at))}"

    def headers(self, claims: UnsubscribeClaims, mailto: str | None = None) -> dict[str, str]:
        """`List-Unsubscribe` (the https link first, optionally a mailto) and `List-Unsubscribe-Post`."""
        targets = [f"<{self.unsubscribe_url(claims)}>"]
        if mailto:
            targets.append(f"<mailto:{mailto}>")
        return {"List-Unsubscribe": ", ".join(targets), "List-Unsubscribe-Post": ONE_CLICK}
