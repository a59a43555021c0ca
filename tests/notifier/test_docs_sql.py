"""The three SQL queries in docs/notifier.md run on the real schema and say what they claim."""

from __future__ import annotations

import re
from pathlib import Path

from notifier.notifier_records import bounce, delivery, refused

from bounceflow_notifier.migrations import migrate
from bounceflow_notifier.rows import TABLE_COLUMNS, bounce_rows, delivery_rows
from bounceflow_notifier.settings import NotifierSettings
from bounceflow_notifier.store import Store

DOC = Path(__file__).resolve().parents[2] / "docs" / "notifier.md"


async def test_documented_queries(tmp_path):
    queries = [q.strip().rstrip(";") for q in re.findall(r"```sql\n(.*?)```", DOC.read_text(), re.S)]
    assert len(queries) == 3
    store = Store(f"chdb://{tmp_path / 'ch'}")
    try:
        await migrate(store, NotifierSettings().migrations_dir())
        rows = [*delivery_rows(refused("m1", account="demo", recipient="gone@gmail.test")),
                *delivery_rows(refused("m2", account="demo", recipient="back@gmail.test")),
                *delivery_rows(delivery("m3", account="demo", recipient="back@gmail.test", minutes=60)),
                *bounce_rows(bounce("b1", "autoreply", "m3", account="demo", recipient="back@gmail.test"))]
        for table, columns in TABLE_COLUMNS.items():
            await store.insert(table, columns, [r.as_sequence() for r in rows if r.table == table])
        worst_domains, per_day, suppress = [await store.query(q) for q in queries]
        assert per_day[0]["messages"] == 3 and per_day[0]["failures"] == 2 and per_day[0]["bounces"] == 1
        assert [r["recipient"] for r in suppress] == ["gone@gmail.test"]  # back@ was delivered later
        assert worst_domains == [] or worst_domains[0]["recipient_domain"] == "gmail.test"
    finally:
        await store.close()
