"""The systems file: the commented example loads; each mistake is refused naming the system and the field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from dsr_gateway.connectors.systems_config import (
    HttpSystem,
    SqlSystem,
    SystemsConfigError,
    load_systems,
    parse_systems,
    resolve_env,
)
from dsr_gateway.services.fulfilment_ports import LegalHold

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "systems.toml"


def test_the_commented_example_loads() -> None:
    config = load_systems(EXAMPLE)
    assert list(config.systems) == ["shop", "crm", "gateway"]
    shop = config.systems["shop"]
    assert isinstance(shop, SqlSystem)
    assert shop.url_env == "SHOP_DATABASE_URL"
    assert list(shop.tables) == ["customers", "addresses", "orders", "newsletter"]
    assert shop.tables["customers"].rectifiable == {"email", "name", "phone"}
    assert shop.tables["orders"].parent == "customers"
    assert shop.tables["newsletter"].consent == {"newsletter": "opted_in"}
    crm = config.systems["crm"]
    assert isinstance(crm, HttpSystem)
    assert crm.base_url == "https://crm.example.internal/dsr"
    assert crm.mode == "sync"
    assert config.holds() == [LegalHold("billing", config.legal_holds["billing"])]
    assert config.using_purposes({"newsletter"}) == ["shop", "crm"]
    manifest = {d.name: d for d in config.describe()}
    assert manifest["shop"].recipients[0].startswith("Parcel carriers")


def _minimal() -> dict[str, Any]:
    return {
        "legal_holds": {"billing": "tax law"},
        "systems": {
            "shop": {
                "kind": "sql",
                "url": "sqlite+aiosqlite:///shop.db",
                "data_categories": ["contact", "billing"],
                "tables": {
                    "customers": {
                        "identifiers": {"email": "email"},
                        "category": "contact",
                        "fields": {"email": {"erasure": "hash"}},
                    },
                    "orders": {
                        "parent": "customers",
                        "foreign_key": "customer_id",
                        "category": "billing",
                        "fields": {"id": {"erasure": "delete_row"}},
                    },
                },
            },
            "crm": {
                "kind": "http",
                "base_url": "https://crm.test",
                "secret_env": "CRM_SECRET",
                "endpoints": {"access": "/access"},
            },
        },
    }


def test_the_minimal_configuration_is_valid() -> None:
    parse_systems(_minimal())


def _set(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    *parents, last = path.split(".")
    target = data
    for part in parents:
        target = target[part]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return data


DELETE = object()
SHOP = "systems.shop"
CUSTOMERS = "systems.shop.tables.customers"


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            f"{CUSTOMERS}.fields.email.erasure",
            "shred",
            f"{CUSTOMERS}.fields.email.erasure: unknown action 'shred'",
        ),
        (f"{CUSTOMERS}.fields.email.erasrue", "null", f"{CUSTOMERS}.fields.email.erasrue: Extra inputs"),
        (
            f"{CUSTOMERS}.fields.email.category",
            "health",
            f"{CUSTOMERS}.fields.email.category: 'health' is not in",
        ),
        (f"{CUSTOMERS}.category", DELETE, f"{CUSTOMERS}.fields.email.category: name its data category"),
        (f"{CUSTOMERS}.fields.email.mask", "{secret}", None),  # a mask pattern only matters with mask
        (
            f"{CUSTOMERS}.fields.email",
            {"erasure": "mask", "mask": "{middle:2}"},
            f"{CUSTOMERS}.fields.email.mask: use only",
        ),
        (f"{CUSTOMERS}.identifiers", DELETE, f"{CUSTOMERS}: give either identifiers"),
        (f"{CUSTOMERS}.identifiers", {}, f"{CUSTOMERS}.identifiers: name the column"),
        (f"{CUSTOMERS}.fields", {}, f"{CUSTOMERS}.fields: declare the fields"),
        (
            f"{CUSTOMERS}.primary_key",
            "id; drop table x",
            f"{CUSTOMERS}: 'id; drop table x' is not a plain column",
        ),
        (
            "systems.shop.tables.orders.parent",
            "clients",
            "systems.shop.tables.orders.parent: unknown table 'clients'",
        ),
        (
            "systems.shop.tables.orders.foreign_key",
            DELETE,
            "systems.shop.tables.orders.foreign_key: name the column",
        ),
        (f"{SHOP}.url", DELETE, f"{SHOP}.url: give exactly one of url or url_env"),
        (f"{SHOP}.url_env", "SHOP_URL", f"{SHOP}.url: give exactly one of url or url_env"),
        (f"{SHOP}.kind", "ftp", f"{SHOP}: Input tag 'ftp'"),
        (f"{SHOP}.batch_size", 0, f"{SHOP}.batch_size: Input should be greater than or equal to 1"),
        ("systems.crm.base_url", "crm.test", "systems.crm.base_url: must start with http:// or https://"),
        ("systems.crm.endpoints", {}, "systems.crm.endpoints: declare at least one endpoint"),
        ("systems.crm.mode", "webhook", "systems.crm.mode: Input should be 'sync' or 'callback'"),
        ("systems.crm.secret_env", DELETE, "systems.crm.secret_env: Field required"),
        ("legal_holds.biling", "typo", "legal_holds.biling: no system declares data category 'biling'"),
    ],
)
def test_a_bad_configuration_names_the_system_and_the_field(
    path: str, value: Any, expected: str | None
) -> None:
    data = _set(_minimal(), path, value)
    if expected is None:
        parse_systems(data)
        return
    with pytest.raises(SystemsConfigError) as caught:
        parse_systems(data)
    assert any(problem.startswith(expected) for problem in caught.value.problems), caught.value.problems


def test_a_parent_chain_that_loops_is_refused() -> None:
    data = _set(_minimal(), f"{CUSTOMERS}.identifiers", DELETE)
    data = _set(data, f"{CUSTOMERS}.parent", "orders")
    data = _set(data, f"{CUSTOMERS}.foreign_key", "order_id")
    with pytest.raises(SystemsConfigError, match="the parent chain loops back"):
        parse_systems(data)


def test_a_broken_file_is_refused_with_its_name(tmp_path: Path) -> None:
    broken = tmp_path / "systems.toml"
    broken.write_text("[systems.shop\nkind = 'sql'")
    with pytest.raises(SystemsConfigError, match="not valid TOML"):
        load_systems(broken)
    with pytest.raises(SystemsConfigError, match="file not found"):
        load_systems(tmp_path / "missing.toml")


def test_an_unset_environment_variable_is_named() -> None:
    assert resolve_env("SHOP_URL", {"SHOP_URL": "x"}, "systems.shop.url_env") == "x"
    with pytest.raises(
        SystemsConfigError, match=r"systems\.shop\.url_env: environment variable SHOP_URL is not set"
    ):
        resolve_env("SHOP_URL", {}, "systems.shop.url_env")
