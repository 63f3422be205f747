"""`dsr-gateway campaign reconfirm` and `dsr-gateway sweep` against the test's database."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from dsr_gateway import cli
from dsr_gateway.app import create_app
from tests.support.app import GraphQLClient, agent_token, make_settings, subject_token
from tests.support.comms_flow_factories import OUTBOX_ALL, SET_CONTACT
from tests.support.consent_factories import choice, seed_catalogue, set_consents


@pytest.fixture
def operator_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> None:
    """The app's test secrets in the environment, as an operator would give them to every process."""
    for name in list(os.environ):
        if name.startswith("DSR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    settings = make_settings(database_url)
    monkeypatch.setenv("DSR_DATABASE_URL", database_url)
    monkeypatch.setenv("DSR_PUBLIC_URL", settings.public_url)
    for name in ("encryption_key", "hmac_key", "jwt_secret", "signing_key"):
        value: Any = getattr(settings, name)
        monkeypatch.setenv(f"DSR_{name.upper()}", value.get_secret_value())


async def dsr(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = await asyncio.to_thread(cli.main, list(argv))
    return code, capsys.readouterr().out


async def test_campaign_and_sweep_commands(
    operator_env: None, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    application = create_app(make_settings(database_url))
    async with (
        LifespanManager(application) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://testserver"
        ) as http,
    ):
        gql = GraphQLClient(http, application)
        await seed_catalogue(gql)
        await gql(SET_CONTACT, {"input": {"email": "k-1@example.com"}}, token=subject_token("k-1"))
        await set_consents(gql, choice(), token=subject_token("k-1"))

        code, out = await dsr(
            capsys, "campaign", "reconfirm", "--purpose", "marketing_email", "--due-within", "366d"
        )
        assert code == 0, out
        assert "1 subjects due within 366 days, 1 reminders queued (0 without an address)" in out
        code, out = await dsr(
            capsys, "campaign", "reconfirm", "--purpose", "marketing_email", "--due-within", "366"
        )
        assert "0 reminders queued" in out
        assert "1 skipped (reminded recently)" in out
        code, out = await dsr(capsys, "campaign", "reconfirm", "--purpose", "nope")
        assert code == 1
        assert "Nothing was queued" in out
        code, out = await dsr(capsys, "sweep")
        assert code == 0
        assert "Consent expiry: 0 consents of 0 subjects expired." in out
        assert "Access packages: 0 expired packages' files deleted, 0 unrecorded files deleted." in out

        [reminder] = [
            m for m in (await gql(OUTBOX_ALL, token=agent_token()))["outboxMessages"]
            if m["kind"] == "RECONFIRMATION_REMINDER"
        ]  # fmt: skip
        assert reminder["recipient"] == "k***@e***.com"
        assert "http://testserver/reconfirm/" in reminder["body"]


async def test_a_sweep_beside_a_running_worker_leaves_its_metrics_port_alone(
    operator_env: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as worker_port:  # the running worker's /metrics
        worker_port.bind(("127.0.0.1", 0))
        worker_port.listen()
        monkeypatch.setenv("DSR_WORKER_METRICS_PORT", str(worker_port.getsockname()[1]))
        code, out = await dsr(capsys, "sweep")
    assert code == 0, out
    assert "Consent follow-ups:" in out
