"""The erasure certificate: per system, what was erased, masked, hashed, nulled, deleted or kept, and why.

It names the request and the systems but holds no personal data values (only table and field names, row
counts and reasons), so it may be kept as the minimum proof after the erasure. The claims are signed by the
gateway's key (CertificateSigner) as a compact JWS.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from dsr_gateway.services.fulfilment_ports import CertificateSigner, ErasureAction, ErasureResult, LegalHold

CERTIFICATE_TYPE = "erasure-certificate"


def certificate_claims(
    request_id: str,
    issuer: str,
    issued_at: datetime,
    results: Sequence[ErasureResult],
    holds: Sequence[LegalHold] = (),
) -> dict[str, object]:
    systems = []
    for result in results:
        counts = {action.value: 0 for action in ErasureAction}
        for item in result.items:
            counts[item.action.value] += 1
        systems.append(
            {
                "system": result.system,
                "complete": not result.pending,
                "summary": {k: v for k, v in counts.items() if v},
                "items": [item.to_json() for item in result.items],
            }
        )
    return {
        "type": CERTIFICATE_TYPE,
        "jti": uuid.uuid4().hex,
        "iss": issuer,
        "sub": f"privacy-request:{request_id}",
        "request_id": request_id,
        "iat": int(issued_at.timestamp()),
        "issued_at": issued_at.isoformat(),
        "legal_holds": [{"category": h.category, "reason": h.reason, "source": h.source} for h in holds],
        "systems": systems,
    }


def issue_certificate(
    signer: CertificateSigner,
    request_id: str,
    issuer: str,
    issued_at: datetime,
    results: Sequence[ErasureResult],
    holds: Sequence[LegalHold] = (),
) -> tuple[dict[str, object], str]:
    """The claims and their signed compact JWS (keep both: the JWS is what a third party verifies)."""
    claims = certificate_claims(request_id, issuer, issued_at, results, holds)
    return claims, signer.sign(claims)
