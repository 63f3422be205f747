"""The data systems file (`DSR_SYSTEMS_FILE`, TOML): which systems hold personal data and how to reach them.

`load_systems(path)` parses and checks it; every problem is reported with its dotted path, for example
`systems.shop.tables.customers.fields.email.erasure: unknown action 'shred'`. The format is documented in
docs/fulfilment.md with the commented example examples/systems.toml.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from dsr_gateway.connectors.erasure_values import MASK_PLACEHOLDER
from dsr_gateway.services.fulfilment_ports import LegalHold, SystemDescription

NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class ErasureKind(StrEnum):
    DELETE_ROW = "delete_row"
    NULL = "null"
    MASK = "mask"
    HASH = "hash"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldConfig(_Strict):
    erasure: ErasureKind | None = None
    mask: str = "***"  # with erasure = "mask": placeholders {first:N}, {last:N}, {domain}
    rectify: bool = False
    sensitive: bool = False
    category: str | None = None

    @field_validator("erasure", mode="before")
    @classmethod
    def _known_action(cls, value: object) -> object:
        known = [k.value for k in ErasureKind]
        if value is not None and value not in known:
            raise PydanticCustomError(
                "unknown_action",
                "unknown action {value}; use one of {known}",
                {"value": repr(value), "known": ", ".join(known)},
            )
        return value


class IdentifierColumns(_Strict):
    external_id: str | None = None
    email: str | None = None


class TableConfig(_Strict):
    table: str | None = None  # the real table name, when it differs from the key (may be schema.table)
    primary_key: str = "id"
    identifiers: IdentifierColumns | None = None
    parent: str | None = None  # a related table: reached through parent's rows of the subject
    foreign_key: str | None = None  # the column of this table that refers to the parent
    parent_key: str = "id"  # the parent's column it refers to
    category: str | None = None
    fields: dict[str, FieldConfig] = Field(default_factory=dict)
    consent: dict[str, str] = Field(default_factory=dict)  # purpose -> boolean column set on consent change

    @property
    def rectifiable(self) -> frozenset[str]:
        return frozenset(name for name, f in self.fields.items() if f.rectify)


class _SystemBase(_Strict):
    description: str = ""
    data_categories: list[str] = Field(default_factory=list)
    purposes: list[str] = Field(default_factory=list)
    recipients: list[str] = Field(default_factory=list)
    retention: str = ""


class SqlSystem(_SystemBase):
    kind: Literal["sql"]
    url: str | None = None
    url_env: str | None = None
    hash_key_env: str | None = None  # HMAC key for erasure = "hash"; default: the gateway's DSR_HMAC_KEY
    batch_size: int = Field(default=1000, ge=1, le=100_000)
    tables: dict[str, TableConfig]


class HttpEndpoints(_Strict):
    access: str | None = None
    erasure: str | None = None
    rectification: str | None = None
    consent: str | None = None


class HttpSystem(_SystemBase):
    kind: Literal["http"]
    base_url: str
    endpoints: HttpEndpoints
    secret_env: str
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    mode: Literal["sync", "callback"] = "sync"
    sensitive_fields: list[str] = Field(default_factory=list)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise PydanticCustomError("url", "must start with http:// or https://")
        return value.rstrip("/")


class GatewaySystem(_SystemBase):
    """The gateway's own records (consents, requests, identities); fulfilled by the gateway itself."""

    kind: Literal["gateway"]


SystemConfig = Annotated[SqlSystem | HttpSystem | GatewaySystem, Field(discriminator="kind")]


class SystemsConfig(_Strict):
    systems: dict[str, SystemConfig] = Field(default_factory=dict)
    legal_holds: dict[str, str] = Field(default_factory=dict)  # data category -> reason

    def holds(self) -> list[LegalHold]:
        return [LegalHold(category, reason) for category, reason in self.legal_holds.items()]

    def describe(self) -> list[SystemDescription]:
        """What the access package manifest (and the staff listing) says about each system."""
        return [
            SystemDescription(
                name=name,
                kind=system.kind,
                data_categories=tuple(system.data_categories),
                purposes=tuple(system.purposes),
                recipients=tuple(system.recipients),
                retention=system.retention,
                description=system.description,
            )
            for name, system in self.systems.items()
        ]

    def using_purposes(self, purposes: set[str]) -> list[str]:
        """The systems to tell about a consent change of any of `purposes`."""
        return [name for name, s in self.systems.items() if purposes & set(s.purposes)]


class SystemsConfigError(ValueError):
    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        listing = "\n  ".join(problems)
        super().__init__(f"the systems file {source} is not valid:\n  {listing}")


def load_systems(path: str | Path) -> SystemsConfig:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SystemsConfigError(str(path), [f"file not found: {path}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise SystemsConfigError(str(path), [f"not valid TOML: {exc}"]) from exc
    return parse_systems(data, source=str(path))


def parse_systems(data: Mapping[str, Any], source: str = "<data>") -> SystemsConfig:
    try:
        config = SystemsConfig.model_validate(data)
    except ValidationError as exc:
        raise SystemsConfigError(source, [_problem(e) for e in exc.errors()]) from exc
    problems = list(_cross_checks(config))
    if problems:
        raise SystemsConfigError(source, problems)
    return config


def _problem(error: Any) -> str:
    loc = [str(part) for part in error["loc"]]
    if len(loc) > 2 and loc[0] == "systems" and loc[2] in ("sql", "http", "gateway"):
        del loc[2]  # the discriminator tag pydantic adds
    return f"{'.'.join(loc)}: {error['msg']}"


def _cross_checks(config: SystemsConfig) -> Iterator[str]:
    declared: set[str] = set()
    for name, system in config.systems.items():
        where = f"systems.{name}"
        if not re.match(NAME, name):
            yield f"{where}: a system name is letters, digits and _"
        declared.update(system.data_categories)
        if isinstance(system, SqlSystem):
            if (system.url is None) == (system.url_env is None):
                yield f"{where}.url: give exactly one of url or url_env"
            if not system.tables:
                yield f"{where}.tables: declare at least one table"
            yield from _table_checks(where, system)
        if isinstance(system, HttpSystem) and not any(system.endpoints.model_dump().values()):
            yield f"{where}.endpoints: declare at least one endpoint"
    for category in config.legal_holds:
        if category not in declared:
            yield f"legal_holds.{category}: no system declares data category {category!r}"


def _table_checks(where: str, system: SqlSystem) -> Iterator[str]:
    categories = system.data_categories
    for key, table in system.tables.items():
        at = f"{where}.tables.{key}"
        if (table.identifiers is None) == (table.parent is None):
            yield f"{at}: give either identifiers (external_id and/or email) or a parent table"
        if table.identifiers is not None and not (table.identifiers.external_id or table.identifiers.email):
            yield f"{at}.identifiers: name the column of external_id or of email"
        if table.parent is not None:
            if table.parent not in system.tables:
                yield f"{at}.parent: unknown table {table.parent!r}"
            elif _has_cycle(system, key):
                yield f"{at}.parent: the parent chain loops back to {key!r}"
            if table.foreign_key is None:
                yield f"{at}.foreign_key: name the column that refers to {table.parent!r}"
        if not table.fields:
            yield f"{at}.fields: declare the fields to return"
        for column in [
            table.primary_key,
            table.foreign_key,
            table.parent_key,
            *table.fields,
            *table.consent.values(),
        ]:
            if column is not None and not re.match(NAME, column):
                yield f"{at}: {column!r} is not a plain column name"
        for field_name, field in table.fields.items():
            category = field.category or table.category or (categories[0] if len(categories) == 1 else None)
            if category is None:
                yield f"{at}.fields.{field_name}.category: name its data category (one of {categories})"
            elif category not in categories:
                yield f"{at}.fields.{field_name}.category: {category!r} is not in {where}.data_categories"
            if field.erasure is ErasureKind.MASK:
                leftover = MASK_PLACEHOLDER.sub("", field.mask)
                if "{" in leftover or "}" in leftover:
                    yield f"{at}.fields.{field_name}.mask: use only {{first:N}}, {{last:N}} and {{domain}}"


def _has_cycle(system: SqlSystem, start: str) -> bool:
    seen = {start}
    current = system.tables[start].parent
    while current is not None and current in system.tables:
        if current in seen:
            return True
        seen.add(current)
        current = system.tables[current].parent
    return False


def field_category(system: SqlSystem, table: TableConfig, field: FieldConfig) -> str:
    """The data category a field belongs to (checked at load time to exist)."""
    categories = system.data_categories
    category = field.category or table.category or (categories[0] if len(categories) == 1 else None)
    assert category is not None
    return category


def resolve_env(name: str, environ: Mapping[str, str], where: str) -> str:
    """The value of an environment variable named in the file; a clear error when it is not set."""
    value = environ.get(name)
    if not value:
        raise SystemsConfigError("(environment)", [f"{where}: environment variable {name} is not set"])
    return value
