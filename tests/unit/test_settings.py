"""Settings are validated at start with a message a person can act on; a bad one stops `serve` with 2."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from dsr_gateway import cli
from dsr_gateway.settings import Settings

LONG_SECRET = "x" * 32
KEYS = {"DSR_ENCRYPTION_KEY": "e" * 40, "DSR_HMAC_KEY": "h" * 40}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No DSR_ variable from the caller's shell, no `.env` and no dev-secrets file from the worktree."""
    import os

    for name in list(os.environ):
        if name.startswith("DSR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def settings_error(**values: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, **values)  # type: ignore[call-arg]
    return str(caught.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"database_url": "mysql+aiomysql://u@h/db"},
            "unsupported database URL scheme 'mysql+aiomysql'; "
            "use one of sqlite+aiosqlite, postgresql+asyncpg",
        ),
        (
            {"database_url": "postgresql://u@h/db"},
            "unsupported database URL scheme 'postgresql'",
        ),
        ({"database_url": "dsr_gateway.db"}, "unsupported database URL scheme"),
        (
            {"env": "production", **{k.removeprefix("DSR_").lower(): v for k, v in KEYS.items()}},
            "production needs DSR_JWT_SECRET or DSR_JWKS_URL to verify tokens",
        ),
        (
            {"env": "production", "jwt_secret": LONG_SECRET},
            "production needs DSR_ENCRYPTION_KEY, DSR_HMAC_KEY, DSR_SIGNING_KEY",
        ),
        (
            {"env": "production", "jwks_url": "https://idp.example/jwks", "encryption_key": "e" * 40},
            "production needs DSR_HMAC_KEY, DSR_SIGNING_KEY",
        ),
        ({"jwt_secret": "short"}, "DSR_JWT_SECRET must be at least 32 characters"),
        ({"env": "staging"}, "Input should be 'development' or 'production'"),
        ({"database_pool_size": 0}, "greater than or equal to 1"),
        ({"consent_lock_timeout_seconds": -1}, "greater than or equal to 0"),
        ({"consent_lock_timeout_seconds": 7200}, "less than or equal to 3600"),
        ({"max_body_bytes": 10}, "greater than or equal to 1024"),
        ({"log_level": "LOUD"}, "unknown log level 'LOUD'; use one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ],
)
def test_a_bad_setting_is_refused_with_a_clear_message(values: dict[str, Any], message: str) -> None:
    assert message in settings_error(**values)


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"database_url": "postgresql+asyncpg://user@db.example/gateway"},
        {
            "env": "production",
            "jwt_secret": LONG_SECRET,
            "encryption_key": "e",
            "hmac_key": "h",
            "signing_key": "k",
        },
        {
            "env": "production",
            "jwks_url": "https://idp.example/jwks",
            "encryption_key": "e",
            "hmac_key": "h",
            "signing_key": "k",
        },
        {"log_level": "debug"},
        {"consent_lock_timeout_seconds": 0},  # waits without limit
        {"consent_lock_timeout_seconds": 0.25},
    ],
)
def test_good_settings_are_accepted(values: dict[str, Any]) -> None:
    Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_development_fills_missing_secrets_from_one_local_file(tmp_path: Path) -> None:
    first = Settings(_env_file=None).with_development_secrets(tmp_path / "dev.json")  # type: ignore[call-arg]
    again = Settings(_env_file=None).with_development_secrets(tmp_path / "dev.json")  # type: ignore[call-arg]
    assert first.jwt_secret is not None
    assert again.jwt_secret is not None
    assert first.jwt_secret.get_secret_value() == again.jwt_secret.get_secret_value()
    assert (tmp_path / "dev.json").stat().st_mode & 0o777 == 0o600
    with_jwks = Settings(_env_file=None, jwks_url="https://idp.example/jwks")  # type: ignore[call-arg]
    assert with_jwks.with_development_secrets(tmp_path / "dev.json").jwt_secret is None


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"DSR_DATABASE_URL": "mysql://u@h/db"}, "DSR_DATABASE_URL: unsupported database URL scheme 'mysql'"),
        (
            {"DSR_ENV": "production", **KEYS},
            "settings: production needs DSR_JWT_SECRET or DSR_JWKS_URL to verify tokens",
        ),
        ({"DSR_ENV": "production", "DSR_JWT_SECRET": LONG_SECRET}, "production needs DSR_ENCRYPTION_KEY"),
        ({"DSR_JWT_SECRET": "too-short"}, "DSR_JWT_SECRET must be at least 32 characters"),
        ({"DSR_DATABASE_POOL_SIZE": "many"}, "DSR_DATABASE_POOL_SIZE: Input should be a valid integer"),
        ({"DSR_LOG_LEVEL": "LOUD"}, "DSR_LOG_LEVEL: unknown log level 'LOUD'"),
    ],
)
@pytest.mark.parametrize("command", [["serve"], ["migrate"], ["apikey", "list"], ["dev-tokens"]])
def test_a_bad_setting_stops_every_command_with_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    environment: dict[str, str],
    expected: str,
    command: list[str],
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    served: list[object] = []
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: served.append(a))

    assert cli.main(command) == 2

    out, err = capsys.readouterr()
    assert err.startswith("dsr-gateway cannot start: the configuration is not valid.\n")
    assert expected in err
    assert "Traceback" not in err
    assert out == ""
    assert served == []
    assert not (tmp_path / "dsr_gateway.db").exists()


def test_a_bad_setting_in_dotenv_is_reported_too(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DSR_DATABASE_URL=sqlite:///plain.db\n")
    assert cli.main(["serve"]) == 2
    assert "DSR_DATABASE_URL: unsupported database URL scheme 'sqlite'" in capsys.readouterr().err


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "serve" in capsys.readouterr().out
