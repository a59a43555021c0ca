"""ClickHouse schema migrations: numbered SQL files applied once, in order.

`schemas/clickhouse/NNN_name.sql` holds statements separated by `;`. A
migration's version is recorded in `schema_migrations` after all its
statements ran; the statements themselves are idempotent (`IF NOT EXISTS`),
so a crash between the two is harmless and running `migrate` again (every
start does) changes nothing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from bounceflow_notifier.store import Store

log = logging.getLogger(__name__)

_FILENAME = re.compile(r"^(\d+)_([\w-]+)\.sql$")

CREATE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version     UInt32,
    name        String,
    applied_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY version
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def split_statements(sql: str) -> tuple[str, ...]:
    """Statements of a migration file: `--` comments removed, split on `;`."""
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    return tuple(s.strip() for s in "\n".join(lines).split(";") if s.strip())


def load_migrations(directory: Path) -> list[Migration]:
    """The migrations in `directory`, by version; duplicate versions are an error."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILENAME.match(path.name)
        if not match:
            raise ValueError(f"migration file name must be NNN_name.sql: {path}")
        version = int(match.group(1))
        if version in found:
            raise ValueError(f"two migrations with version {version} in {directory}")
        found[version] = Migration(version, match.group(2), split_statements(path.read_text()))
    return [found[v] for v in sorted(found)]


async def migrate(store: Store, directory: Path) -> list[int]:
    """Apply the migrations not applied yet; returns the versions applied now."""
    await store.command(CREATE_MIGRATIONS_TABLE)
    done = {row["version"] for row in await store.query("SELECT version FROM schema_migrations FINAL")}
    applied = []
    for migration in load_migrations(directory):
        if migration.version in done:
            continue
        for statement in migration.statements:
            await store.command(statement)
        await store.insert("schema_migrations", ("version", "name"), [(migration.version, migration.name)])
        log.info("applied ClickHouse migration", extra={"version": migration.version, "migration": migration.name})
        applied.append(migration.version)
    return applied
