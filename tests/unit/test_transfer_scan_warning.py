"""`migrate transfer` warns before claiming from a large legacy table without a partial index leading with its
created column (each batch would sort every pending row while holding its rows), and names the index."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from runbook.checks.legacy_table import Index, LegacyTable
from runbook.commands.transfer import scan_warning
from runbook.model import LegacySettings


def mapping(rows: float, *indexes: Index) -> Any:
    table = LegacyTable(LegacySettings(), {}, rows, "pg_class.reltuples", tuple(indexes))
    return SimpleNamespace(legacy=table)


WARNING = (
    'warning: "public"."Job" holds about 2,500,000 rows and no partial index leads with its createdAt '
    "column: every batch sorts all pending rows while holding its rows locked; create the index first: "
    'CREATE INDEX CONCURRENTLY IF NOT EXISTS "Job_createdAt_pending_idx" ON "public"."Job" '
    '("createdAt", "id") WHERE "status" IN (\'PENDING\')'
)


def test_large_table_without_claim_index_is_warned_with_the_index_to_create() -> None:
    assert scan_warning(mapping(2_500_000)) == WARNING


def test_a_status_index_or_a_full_created_index_is_not_enough() -> None:
    """A status index leaves every pending row to sort; a full createdAt index walks the finished rows."""
    assert scan_warning(mapping(2_500_000, Index("Job_status_idx", "status", partial=True))) == WARNING
    assert scan_warning(mapping(2_500_000, Index("Job_createdAt_idx", "createdAt", partial=False))) == WARNING


def test_small_table_or_claim_index_is_not_warned() -> None:
    assert scan_warning(mapping(50_000)) is None
    assert (
        scan_warning(mapping(2_500_000, Index("Job_createdAt_pending_idx", "createdAt", partial=True)))
        is None
    )
