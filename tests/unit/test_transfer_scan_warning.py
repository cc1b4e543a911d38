"""`migrate transfer` warns before claiming from a large legacy table without an index on its status column
(each batch would sort the whole table while holding its rows), and names the index to create."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from runbook.checks.legacy_table import Index, LegacyTable
from runbook.commands.transfer import scan_warning
from runbook.model import LegacySettings


def mapping(rows: float, *indexes: Index) -> Any:
    table = LegacyTable(LegacySettings(), {}, rows, "pg_class.reltuples", tuple(indexes))
    return SimpleNamespace(legacy=table)


def test_large_table_without_status_index_is_warned_with_the_index_to_create() -> None:
    assert scan_warning(mapping(2_500_000)) == (
        'warning: "public"."Job" holds about 2,500,000 rows and no index starts with its status column: '
        "every batch scans the table; create the index first: CREATE INDEX CONCURRENTLY IF NOT EXISTS "
        '"Job_status_active_idx" ON "public"."Job" ("status") WHERE "status" IN (\'PENDING\', \'RUNNING\')'
    )


def test_small_table_or_status_index_is_not_warned() -> None:
    assert scan_warning(mapping(50_000)) is None
    assert scan_warning(mapping(2_500_000, Index("Job_status_idx", "status", partial=True))) is None
