"""The ClickHouse edge: one sync clickhouse-connect client on one thread.

chDB (the embedded engine) allows one process per data path and has no async
client, and a ClickHouse server is happy with one connection too; so the
notifier owns exactly one client and runs every call — the log writer's
inserts and the read API's queries — on a single dedicated thread. The event
loop never blocks on ClickHouse.

When a call fails the client is dropped and the next call connects again, so
a server that comes back (or a chDB path that was closed) heals by itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import clickhouse_connect
from clickhouse_connect.driver.client import Client

log = logging.getLogger(__name__)

T = TypeVar("T")


class StoreUnavailable(Exception):
    """ClickHouse could not be reached or refused the operation."""


class Store:
    """Async facade over one ClickHouse client living on its own thread."""

    def __init__(self, dsn: str, connect_timeout: float = 5.0) -> None:
        self.dsn = dsn
        self._connect_timeout = connect_timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")
        self._client: Client | None = None
        self._closed = False
        self.healthy = False

    @property
    def embedded(self) -> bool:
        """True for chDB (the notifier is the only process on that path)."""
        return self.dsn.startswith("chdb:")

    async def run(self, fn: Callable[[Client], T]) -> T:
        """Run `fn(client)` on the ClickHouse thread; raises StoreUnavailable."""
        if self._closed:
            raise StoreUnavailable("store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, fn)

    async def insert(self, table: str, columns: Sequence[str], rows: list[Sequence[Any]]) -> None:
        """Insert rows (each a sequence in `columns` order) in one block."""
        if rows:
            await self.run(lambda client: client.insert(table, rows, column_names=list(columns)))

    async def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows of a SELECT as dicts."""

        def select(client: Client) -> list[dict[str, Any]]:
            result = client.query(sql, parameters=parameters or {})
            return [dict(zip(result.column_names, row)) for row in result.result_rows]

        return await self.run(select)

    async def command(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        """A statement without a result set (DDL, OPTIMIZE, …)."""
        return await self.run(lambda client: client.command(sql, parameters=parameters or {}))

    async def close(self) -> None:
        """Close the client (on its thread) and stop the thread."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._disconnect)
        self._executor.shutdown(wait=True)

    # --- on the ClickHouse thread ---------------------------------------------

    def _call(self, fn: Callable[[Client], T]) -> T:
        try:
            if self._client is None:
                self._client = clickhouse_connect.get_client(
                    dsn=self.dsn, connect_timeout=self._connect_timeout, send_receive_timeout=60
                ) if not self.embedded else clickhouse_connect.get_client(dsn=self.dsn)
            result = fn(self._client)
        except Exception as exc:
            self.healthy = False
            self._disconnect()
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        self.healthy = True
        return result

    def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # closing a broken client may fail too; it is gone either way
                log.debug("closing the ClickHouse client failed", exc_info=True)
