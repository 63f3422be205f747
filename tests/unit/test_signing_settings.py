"""DSR_SIGNING_KEY: generated once in development (even into an older secrets file); production needs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from dsr_gateway.connectors.signing import load_signing_key
from dsr_gateway.settings import Settings


def test_development_generates_a_stable_key_even_in_an_older_secrets_file(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps({"jwt_secret": "x" * 48, "encryption_key": "e" * 48, "hmac_key": "h" * 48}))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    first = settings.with_development_secrets(path).signing_key
    second = settings.with_development_secrets(path).signing_key
    assert first is not None
    assert second is not None
    assert first.get_secret_value() == second.get_secret_value()
    load_signing_key(first.get_secret_value())
    assert json.loads(path.read_text())["jwt_secret"] == "x" * 48


def test_production_requires_a_signing_key() -> None:
    with pytest.raises(ValidationError, match="DSR_SIGNING_KEY"):
        Settings(  # type: ignore[call-arg]
            _env_file=None, env="production", jwt_secret="s" * 40, encryption_key="e", hmac_key="h"
        )
