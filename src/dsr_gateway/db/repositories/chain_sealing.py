"""Sealing chained events in Python before a single multi-row INSERT.

The hashed document leaves out the columns the database assigns at insert (`id`, and `tx_order` on
consent events): everything else is known before the INSERT, so a batch costs one SELECT of the chain
heads and one INSERT, whatever its size. The event's place is its chain key and `sequence`.
Writers of one chain must be serialised by the caller (the subject's row lock for consent events, the
request's version guard for request events); the unique (chain, sequence) index stops any that are not.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Select, Table, bindparam, func, select

from dsr_gateway.db.tables.consent import ConsentEventRow
from dsr_gateway.db.tables.requests import PrivacyRequestEventRow
from dsr_gateway.domain.audit_chain import ChainHead, ChainLayout, ChainTemplate, next_link

CONSENT_LAYOUT = ChainLayout(excluded=frozenset({"id", "tx_order"}))
REQUEST_LAYOUT = ChainLayout(excluded=frozenset({"id"}))
CONSENT_EVENTS: Table = ConsentEventRow.__table__  # type: ignore[attr-defined]
REQUEST_EVENTS: Table = PrivacyRequestEventRow.__table__  # type: ignore[attr-defined]
HEADS_CHUNK = 1000

Run = Callable[[Any, Any], Awaitable[Any]]  # (statement, parameters): Connection.execute


def heads_statement(
    table: Table, chain_column: str, layout: ChainLayout, among: str | None = None
) -> Select[Any]:
    """(chain, sequence, hash) of each chain's last event in `table`: the row of its highest sequence.

    With `among`, only the chains listed in the expanding parameter of that name. Built once per table
    (at import for the sealers); the caller runs it on its own connection.
    """
    chain, sequence = table.c[chain_column], table.c[layout.sequence_field]
    last = select(chain.label("chain"), func.max(sequence).label("sequence"))
    if among is not None:
        last = last.where(chain.in_(bindparam(among, type_=chain.type, expanding=True)))
    heads = last.group_by(chain).subquery()
    return select(chain, sequence, table.c[layout.hash_field]).join(
        heads, (chain == heads.c.chain) & (sequence == heads.c.sequence)
    )


class ChainSealer:
    def __init__(self, table: Table, chain_column: str, layout: ChainLayout) -> None:
        self._table = table
        self._chain = table.c[chain_column]
        self._layout = layout
        self._heads = heads_statement(table, chain_column, layout, among="chains")
        roles = {layout.hash_field, layout.sequence_field, layout.prev_hash_field}
        self._hashed = [c for c in table.columns if c.name not in layout.excluded and c.name not in roles]
        for column in self._hashed:
            if column.server_default is not None:
                raise ValueError(f"{table.name}.{column.name} has a database default: exclude it or set it")
        # Every hashed column varies: the template writes the same text as `event_hash` (domain tests
        # compare them) without building and sorting a document per event: ~3x quicker per live write.
        # No memo: it lives as long as the process, and would keep subjects' ids and addresses in memory.
        hashed = [*(c.name for c in self._hashed), layout.sequence_field]
        self._template = ChainTemplate(hashed, {}, layout, memo=False)

    async def heads(self, run: Run, chain_values: Sequence[object]) -> dict[object, ChainHead]:
        """The last (sequence, hash) of each of these chains; one statement per thousand chains."""
        found: dict[object, ChainHead] = {}
        unique = list(dict.fromkeys(chain_values))
        for start in range(0, len(unique), HEADS_CHUNK):
            rows = await run(self._heads, {"chains": unique[start : start + HEADS_CHUNK]})
            found.update({chain: ChainHead(sequence, digest) for chain, sequence, digest in rows})
        return found

    def document(self, values: dict[str, Any]) -> dict[str, Any]:
        """Every hashed column as it will be stored (a column left out of `values` is stored as NULL)."""
        document: dict[str, Any] = {}
        for column in self._hashed:
            if column.name in values:
                document[column.name] = values[column.name]
            elif column.default is not None and getattr(column.default, "is_scalar", False):
                document[column.name] = column.default.arg  # type: ignore[attr-defined]
            else:
                document[column.name] = None
        return document

    async def seal_all(
        self,
        run: Run,
        rows: Sequence[dict[str, Any]],
        known: Mapping[Any, ChainHead | None] | None = None,
    ) -> list[dict[str, Any]]:
        """The rows with sequence, prev_hash and hash, in order; each chain continues from its head.

        `known` gives heads the caller already read under the chain's lock (None: an empty chain); only
        the other chains' heads are read.
        """
        chains = [row[self._chain.name] for row in rows]
        known = known or {}
        heads = {c: h for c, h in known.items() if h is not None}
        missing = [c for c in chains if c not in known]
        if missing:
            heads.update(await self.heads(run, missing))
        sealed: list[dict[str, Any]] = []
        layout = self._layout
        for row in rows:
            chain = row[self._chain.name]
            sequence, prev_hash = next_link(heads.get(chain))
            document = self.document(row)
            digest = self._template.hash(prev_hash, [*document.values(), sequence])
            heads[chain] = ChainHead(sequence, digest)
            # The values hashed are the values written (a column left out of `row` is written as hashed).
            sealed.append(
                {
                    **row,
                    **document,
                    layout.sequence_field: sequence,
                    layout.prev_hash_field: prev_hash,
                    layout.hash_field: digest,
                }
            )
        return sealed


CONSENT_SEALER = ChainSealer(CONSENT_EVENTS, "subject_id", CONSENT_LAYOUT)
REQUEST_SEALER = ChainSealer(REQUEST_EVENTS, "request_id", REQUEST_LAYOUT)
