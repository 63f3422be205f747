"""Signed links: round trips, and every way a token can be wrong refused with its own error."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from dsr_gateway.connectors.link_signing import LinkSigner, UnsubscribeLinks
from dsr_gateway.domain.unsubscribe import (
    InvalidLink,
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

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
KEY = "test-hmac-key-0123456789abcdef0123456789abcdef"
A = UnsubscribeClaims("customer-a", "marketing_email", "promotions", "EMAIL")


def signer(keys: dict[int, str] | None = None, current: int = 1) -> LinkSigner:
    return LinkSigner(keys or {1: KEY}, current)


def _raw(token: str) -> bytearray:
    return bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


def _token(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "claims",
    [
        A,
        UnsubscribeClaims("customer-a", "marketing_email"),
        UnsubscribeClaims("ünïcode-ß", "news", None, "SMS"),
        UnsubscribeClaims("", "p"),
    ],
)
def test_unsubscribe_round_trip(claims: UnsubscribeClaims) -> None:
    token = signer().unsubscribe_token(claims)
    assert all(c.isalnum() or c in "-_" for c in token)  # URL-safe, no padding
    assert signer().read_unsubscribe(token, NOW) == claims


def test_reconfirm_round_trip_with_expiry() -> None:
    claims = ReconfirmClaims("customer-a", "marketing_email")
    token = signer().reconfirm_token(claims, expires_at=NOW + timedelta(days=30))
    assert signer().read_reconfirm(token, NOW + timedelta(days=29), "customer-a", "marketing_email") == claims


def test_every_byte_flipped_is_refused() -> None:
    token = signer().unsubscribe_token(A)
    raw = _raw(token)
    for position in range(len(raw)):
        altered = bytearray(raw)
        altered[position] ^= 0x01
        with pytest.raises((LinkForged, LinkMalformed)):
            signer().read_unsubscribe(_token(bytes(altered)), NOW)


def test_a_token_cannot_be_moved_to_another_subject() -> None:
    token_a = signer().unsubscribe_token(A)
    raw = bytes(_raw(token_a))
    # Splice subject B into A's signed token: the MAC no longer matches.
    spliced = raw.replace(b"customer-a", b"customer-b")
    assert spliced != raw
    with pytest.raises(LinkForged):
        signer().read_unsubscribe(_token(spliced), NOW)
    # Presented for subject B (or another purpose), A's authentic token is refused too.
    with pytest.raises(LinkMismatch):
        signer().read_unsubscribe(token_a, NOW, expected_subject="customer-b")
    with pytest.raises(LinkMismatch):
        signer().read_unsubscribe(token_a, NOW, expected_purpose="analytics")


def test_an_unsubscribe_token_is_not_a_reconfirm_token_nor_the_reverse() -> None:
    unsubscribe = signer().unsubscribe_token(UnsubscribeClaims("customer-a", "marketing_email"))
    reconfirm = signer().reconfirm_token(ReconfirmClaims("customer-a", "marketing_email"))
    with pytest.raises(LinkWrongType):
        signer().read_reconfirm(unsubscribe, NOW)
    with pytest.raises(LinkWrongType):
        signer().read_unsubscribe(reconfirm, NOW)


@pytest.mark.parametrize(("offset", "expired"), [(-1, False), (0, True), (1, True)])
def test_expiry_boundary(offset: int, expired: bool) -> None:
    token = signer().unsubscribe_token(A, expires_at=NOW)
    at = NOW + timedelta(seconds=offset)
    if expired:
        with pytest.raises(LinkExpired):
            signer().read_unsubscribe(token, at)
    else:
        assert signer().read_unsubscribe(token, at) == A


def test_a_token_without_expiry_never_expires() -> None:
    token = signer().unsubscribe_token(A)
    assert signer().read_unsubscribe(token, NOW + timedelta(days=3650)) == A


def test_keys_rotate_old_tokens_work_while_their_key_is_configured() -> None:
    old = signer({1: KEY}, 1).unsubscribe_token(A)
    rotated = signer({1: KEY, 2: "a-brand-new-key-for-links-0123456789"}, 2)
    assert rotated.read_unsubscribe(old, NOW) == A
    new = rotated.unsubscribe_token(A)
    assert _raw(new)[1] == 2
    assert rotated.read_unsubscribe(new, NOW) == A
    with pytest.raises(LinkForged):
        signer({2: "a-brand-new-key-for-links-0123456789"}, 2).read_unsubscribe(old, NOW)  # key 1 retired
    with pytest.raises(LinkForged):
        signer({1: "another-key-entirely-0123456789abcdef"}, 1).read_unsubscribe(old, NOW)


@pytest.mark.parametrize(
    "token", ["", "x", "!!!!", "a" * 5000, _token(b"\x02" + b"\x00" * 60), _token(b"\x01\x01")]
)
def test_garbage_is_malformed(token: str) -> None:
    with pytest.raises(LinkMalformed):
        signer().read_unsubscribe(token, NOW)


def test_refusals_are_typed_domain_errors_with_a_reason() -> None:
    reasons = {cls.reason for cls in (LinkMalformed, LinkForged, LinkWrongType, LinkExpired, LinkMismatch)}
    assert reasons == {"MALFORMED", "FORGED", "WRONG_TYPE", "EXPIRED", "MISMATCH"}
    assert all(issubclass(c, InvalidLink) for c in (LinkMalformed, LinkForged, LinkWrongType, LinkExpired))


def test_field_encoding_round_trip_and_refusals() -> None:
    fields = ("a", None, "", "ü" * 10)
    assert decode_fields(encode_fields(fields), 4) == fields
    for broken, count in ((encode_fields(fields), 3), (encode_fields(fields)[:-1], 4), (b"\x00", 1)):
        with pytest.raises(LinkMalformed):
            decode_fields(broken, count)
    with pytest.raises(LinkMalformed):
        decode_fields(b"\x00\x01\xff", 1)


@pytest.mark.parametrize(("keys", "current"), [({1: KEY}, 2), ({300: KEY}, 300), ({1: ""}, 1)])
def test_bad_signer_configuration(keys: dict[int, str], current: int) -> None:
    with pytest.raises(ValueError, match="key"):
        LinkSigner(keys, current)


def test_list_unsubscribe_headers() -> None:
    links = UnsubscribeLinks(signer(), "https://gw.example/")
    headers = links.headers(A, mailto="unsubscribe@shop.example")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https_part, mailto_part = headers["List-Unsubscribe"].split(", ")
    assert https_part.startswith("<https://gw.example/unsubscribe/")
    assert mailto_part == "<mailto:unsubscribe@shop.example>"
    token = https_part.removeprefix("<https://gw.example/unsubscribe/").removesuffix(">")
    assert signer().read_unsubscribe(token, NOW) == A
    reconfirm = links.reconfirm_url(ReconfirmClaims("c", "p"))
    assert reconfirm.startswith("https://gw.example/reconfirm/")
    assert LinkType.RECONFIRM == 2
