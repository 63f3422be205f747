"""The app refuses a bad systems file at start, and builds a connector per SQL/HTTP system of a good one."""

from __future__ import annotations

from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager

from dsr_gateway.app import create_app
from dsr_gateway.connectors.gateway_records import GatewayRecordsConnector
from dsr_gateway.connectors.http_connector import HttpConnector
from dsr_gateway.connectors.sql_connector import SqlConnector
from dsr_gateway.connectors.systems_config import SystemsConfigError
from tests.support.app import make_settings
from tests.support.shop import EXAMPLE_SYSTEMS


def test_a_bad_systems_file_stops_the_start(tmp_path: Path, sqlite_template: Path) -> None:
    bad = tmp_path / "systems.toml"
    bad.write_text(EXAMPLE_SYSTEMS.read_text().replace('erasure = "hash"', 'erasure = "shred"'))
    with pytest.raises(
        SystemsConfigError,
        match=r"systems\.shop\.tables\.customers\.fields\.email\.erasure: unknown action 'shred'",
    ):
        create_app(make_settings(f"sqlite+aiosqlite:///{sqlite_template}", systems_file=bad))


async def test_the_example_file_gives_a_connector_per_system(
    tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}")
    monkeypatch.setenv("CRM_DSR_SECRET", "crm-secret")
    app = create_app(make_settings(f"sqlite+aiosqlite:///{sqlite_template}", systems_file=EXAMPLE_SYSTEMS))
    async with LifespanManager(app) as manager:
        state = manager._state  # the lifespan state every request sees
        assert isinstance(state["connectors"]["shop"], SqlConnector)
        assert isinstance(state["connectors"]["crm"], HttpConnector)
        assert isinstance(state["connectors"]["gateway"], GatewayRecordsConnector)
        assert state["certificate_signer"].verify(state["certificate_signer"].sign({"iat": 1})) == {"iat": 1}


async def test_a_missing_environment_variable_is_named(
    sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHOP_DATABASE_URL", raising=False)
    app = create_app(make_settings(f"sqlite+aiosqlite:///{sqlite_template}", systems_file=EXAMPLE_SYSTEMS))
    with pytest.raises(
        SystemsConfigError, match=r"systems\.shop\.url_env: environment variable SHOP_DATABASE_URL"
    ):
        async with LifespanManager(app):
            pass
