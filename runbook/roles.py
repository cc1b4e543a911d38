"""The least-privilege database role for the toolkit: `migrate init --role NAME` renders a SQL script
(templates/sql/role.sql.j2) from the runbook's names that creates a role able to read the pg-boss schema and
the legacy table, own its state schema and write its flag table, and nothing else (a superuser connection
makes a `sql` check's "read-only" meaningless: COPY ... TO PROGRAM, pg_read_file, pg_terminate_backend)."""

from __future__ import annotations

import re

from runbook.errors import UsageError
from runbook.model import PostgresFlags, Runbook
from runbook.sqltext import quote_ident, quote_literal

ROLE_FILE = "runbook-role.sql"
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_role_name(role: str) -> None:
    """Refuse a role name that is not a plain lower-case identifier (it is typed in URLs and psql)."""
    if not _ROLE_NAME.match(role):
        raise UsageError(
            f"--role {role!r} is not a plain role name",
            hint="use lower-case letters, digits and _ (at most 63, not starting with a digit), e.g. runbook",
        )


def dollar_tag(*texts: str) -> str:
    """A dollar-quote tag (`$runbook$`) that occurs in none of `texts`, for DO blocks quoting them."""
    n = 0
    while True:
        tag = f"$runbook{n or ''}$"
        if not any(tag in t for t in texts):
            return tag
        n += 1


def role_sql(runbook: Runbook, role: str) -> str:
    """Render the script creating `role` with exactly the privileges `runbook` needs."""
    from runbook.rendering import template_env

    check_role_name(role)
    s = runbook.settings
    flags = s.flags if isinstance(s.flags, PostgresFlags) else None
    others = [
        name
        for name, url in (
            ("settings.state.url", s.state.url),
            ("settings.pgboss.url", s.pgboss.url),
            ("settings.legacy.url", s.legacy.url),
            ("settings.flags.url", flags.url if flags else None),
        )
        if url and url != s.database.url
    ]
    env = template_env(autoescape=False)
    env.filters["ident"] = quote_ident
    env.filters["literal"] = quote_literal
    return env.get_template("sql/role.sql.j2").render(
        runbook_name=runbook.name,
        role=role,
        file_name=ROLE_FILE,
        tag=dollar_tag(role, s.pgboss.schema, s.legacy.schema, s.legacy.table, s.state.schema),
        pgboss_schema=s.pgboss.schema,
        legacy_schema=s.legacy.schema,
        legacy_table=s.legacy.table,
        state_schema=s.state.schema,
        flags_schema=flags.schema if flags else None,
        flags_table=flags.table if flags else None,
        other_urls=others,
    )
