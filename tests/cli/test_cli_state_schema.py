"""A state schema runbook may not create: a role without CREATE on the database (the least-privilege set-up
before runbook-role.sql ran) or a reserved name (pg_*) exits 2 naming the schema, the reason and the fix,
never with a traceback."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.cli.conftest import RUNBOOK, Outcome, with_setting

Migrate = Callable[..., Outcome]
FIX = "set settings.state.schema to a schema this role owns (not pg_*), or create it once as its owner"


@pytest.fixture
def plain_role(pg_server_url: str, pg_url: str) -> Iterator[str]:
    """DATABASE_URL for a new login role with no CREATE on the database (PostgreSQL's default for a role)."""
    role = f"plain_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        try:
            yield pg_url.replace("postgresql://postgres:@", f"postgresql://{role}@").replace(
                "postgresql://postgres@", f"postgresql://{role}@"
            )
        finally:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_role_that_may_not_create_the_schema_exits_2_with_the_fix(
    rb_dir: Path, migrate: Migrate, monkeypatch: pytest.MonkeyPatch, plain_role: str
) -> None:
    assert "://plain_" in plain_role
    monkeypatch.setenv("DATABASE_URL", plain_role)
    r = migrate("status")
    assert r.code == 2, r.text
    assert 'cannot create or upgrade the state schema "runbook" (permission denied for database' in r.err
    assert FIX in r.err and "Traceback" not in r.text
    r = migrate("-o", "json", "advance", "--yes")
    assert (r.code, json.loads(r.out)["error"]["exit_code"]) == (2, 2)
    assert (rb_dir / "app.env").read_text().startswith("# flags of the app\nPGBOSS_ENABLED=false\n")


def test_a_reserved_schema_name_exits_2(rb_dir: Path, migrate: Migrate) -> None:
    text = with_setting(RUNBOOK, "  state: {schema: pg_mine}\n")
    (rb_dir / "stages.yaml").write_text(text)
    r = migrate("status")
    assert r.code == 2, r.text
    assert 'cannot create or upgrade the state schema "pg_mine" (unacceptable schema name "pg_mine")' in r.err
    assert FIX in r.err and "Traceback" not in r.text
