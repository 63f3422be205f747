"""Connectors for every system of the systems file, built once by the composition root."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from dsr_gateway.connectors.http_connector import HttpConnector
from dsr_gateway.connectors.sql_connector import SqlConnector, make_system_engine
from dsr_gateway.connectors.systems_config import HttpSystem, SqlSystem, SystemsConfig, resolve_env
from dsr_gateway.services.fulfilment_ports import Connector, SystemDescription


def build_connectors(
    config: SystemsConfig,
    environ: Mapping[str, str],
    http_client: httpx.AsyncClient,
    default_hash_key: bytes,
    callback_base_url: str | None = None,
) -> dict[str, Connector]:
    """One connector per SQL and HTTP system (the gateway's own records are fulfilled by the gateway).

    Environment variables named in the file (url_env, hash_key_env, secret_env) are read here, from the
    mapping the caller passes; a missing one is refused naming the system and the field.
    """
    connectors: dict[str, Connector] = {}
    for name, system in config.systems.items():
        if isinstance(system, SqlSystem):
            url = system.url or resolve_env(system.url_env or "", environ, f"systems.{name}.url_env")
            hash_key = (
                resolve_env(system.hash_key_env, environ, f"systems.{name}.hash_key_env").encode()
                if system.hash_key_env
                else default_hash_key
            )
            connectors[name] = SqlConnector(name, system, make_system_engine(url), hash_key)
        elif isinstance(system, HttpSystem):
            secret = resolve_env(system.secret_env, environ, f"systems.{name}.secret_env").encode()
            connectors[name] = HttpConnector(
                name, system, secret, http_client, callback_base_url=callback_base_url
            )
    return connectors


def sources_for(
    config: SystemsConfig, connectors: Mapping[str, Connector]
) -> list[tuple[SystemDescription, Connector]]:
    """The (manifest description, connector) pairs an access package gathers from, in file order."""
    return [(d, connectors[d.name]) for d in config.describe() if d.name in connectors]


async def close_connectors(connectors: Mapping[str, Connector]) -> None:
    for connector in connectors.values():
        await connector.aclose()
