"""The typed, frozen runbook model. No I/O here: `runbook.spec` builds these objects from `stages.yaml`
(strictly, before any side effect) and every other part reads them.

Field types drive both the loader and the exported JSON Schema: `Duration` and `Size` fields accept human
strings, `tuple[X, ...]` fields accept YAML lists, and each field's `doc` metadata becomes its description.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

Duration = Annotated[float, "duration"]
"""Seconds; written `90s`, `5m`, `24h`, `2d` in the file. Multiplied by the time scale when loaded."""
Timeout = Annotated[float, "timeout"]
"""Seconds, written like a Duration, but NOT compressed by the time scale: a connection, a query or an app
picking up a flag takes real time however fast the demo runs."""
Size = Annotated[int, "size"]
"""Bytes; written `100MB`, `1GiB` in the file."""
Threshold = Annotated[float, "threshold"]
"""A check's max/min in its metric's unit: a number, or a duration (`1d`) on a duration metric, a size
(`100MB`) on a size metric (runbook.units.Quantity remembers which was written; never time-scaled)."""
Identifier = Annotated[str, "identifier"]
"""A PostgreSQL name (schema, table, NOTIFY channel): 1 to 63 bytes, as PostgreSQL would otherwise cut or
refuse it."""


def doc(text: str, default: Any = None, *, factory: Any = None) -> Any:
    """A dataclass field with a description (used by `migrate schema`)."""
    if factory is not None:
        return field(default_factory=factory, metadata={"doc": text})
    return field(default=default, metadata={"doc": text})


# --- checks -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """How many bad measurements a check tolerates before its verdict is a breach (as Argo Rollouts)."""

    failure_limit: int = doc("failures tolerated before the check breaches (default 0)", 0)
    consecutive_error_limit: int = doc("consecutive errors (could not measure) tolerated (default 4)", 4)
    consecutive_failure_limit: int | None = doc("consecutive failures tolerated; unset = not applied", None)


@dataclass(frozen=True)
class CheckSpec:
    """One check as written in a stage: common keys plus the kind's own parameters (`params`)."""

    name: str
    kind: str
    params: Any
    limits: Limits = field(default_factory=Limits)
    timeout: Timeout = 10.0
    description: str = ""
    location: str = ""
    """`stages.yaml:LINE:COL` of the check, for messages."""


# --- stages -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManualItem:
    """A human checklist item that must be confirmed (`--confirm ID`) before leaving the stage."""

    id: str = doc("short id used with --confirm", "")
    text: str = doc("what the person confirms", "")


@dataclass(frozen=True)
class Soak:
    """What must hold before leaving a stage: a minimum time and, optionally, a minimum amount of work."""

    duration: Duration = doc("minimum time in the stage", 0.0)
    work: tuple[CheckSpec, ...] = doc(
        "checks (usually kind `work`) that must pass: work seen on the new path", ()
    )


TRANSFER_WORKERS_MAX = 16
"""The most workers a transfer may have (`--workers`, a stage's `transfer.workers`); each holds a
connection."""


@dataclass(frozen=True)
class StageTransfer:
    """A `migrate transfer legacy` run by `advance` after the stage's flip and verify, before the stage is
    recorded (settings.transfer maps the rows); then its own verify: no claimable row left, every moved
    row's job counted in pg-boss."""

    queue: str = doc("target pg-boss queue (must exist, standard policy)", "")
    type: str | None = doc("only rows of this legacy type (settings.legacy.type_column)", None)
    filter: str | None = doc("extra SQL condition on the legacy rows, ANDed into the claim", None)
    batch: int = doc("rows per transaction", 250)
    enabled: bool = doc("false: declared but not run (plan shows it as off)", True)
    workers: int = doc(f"batches moved at once, each on its own connection (1 to {TRANSFER_WORKERS_MAX})", 1)
    location: str = ""


@dataclass(frozen=True)
class Stage:
    """One state of the migration."""

    id: str
    title: str = ""
    description: str = ""
    set: Mapping[str, str] = field(default_factory=dict)
    preflight: tuple[CheckSpec, ...] = ()
    verify: tuple[CheckSpec, ...] = ()
    verify_deadline: Timeout | None = None
    soak: Soak = field(default_factory=Soak)
    transfer: StageTransfer | None = None
    monitor: tuple[CheckSpec, ...] = ()
    interval: Duration | None = None
    manual: tuple[ManualItem, ...] = ()
    rollback_to: str | None = None
    approval: bool = False
    irreversible: bool = False
    location: str = ""


@dataclass(frozen=True)
class FlagDecl:
    """A feature flag the runbook owns, with the value that is safe (the legacy path)."""

    name: str
    safe: str
    description: str = ""


# --- settings -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseSettings:
    url: str | None = doc("the application database (pg-boss and the legacy table); ${DATABASE_URL}", None)
    statement_timeout: Timeout = doc("statement_timeout of every check query", 5.0)
    connect_timeout: Timeout = doc("connect timeout", 5.0)


@dataclass(frozen=True)
class StateSettings:
    url: str | None = doc("where the state lives; default: settings.database.url", None)
    schema: str = doc("schema of the state tables", "runbook")
    sample_retention: Duration = doc("monitor samples older than this are pruned", 14 * 86400.0)
    journal: str = doc(
        "local journal for events recorded while the state database is unreachable (relative to the runbook "
        "file; lines that cannot be synced go to <journal>.rejected)",
        ".runbook-journal.jsonl",
    )


DOTENV_FLAGS_FILE = ".env.flags"
"""The dotenv backend's file: the default `path` and the file `migrate init` writes (flags at safe values)."""


@dataclass(frozen=True)
class DotenvFlags:
    type: Literal["dotenv"] = "dotenv"
    path: str = doc("the env file the app reads its flags from (relative to the runbook)", DOTENV_FLAGS_FILE)
    reload: tuple[str, ...] = doc("command run after a change (argv list), e.g. [pm2, reload, app]", ())
    reload_shell: bool = doc("run `reload` through /bin/sh (a single string)", False)
    reload_timeout: Timeout = doc("how long the reload command may take", 60.0)


@dataclass(frozen=True)
class PostgresFlags:
    type: Literal["postgres"] = "postgres"
    url: str | None = doc("database holding the flags table; default: settings.database.url", None)
    schema: Identifier = doc("schema of the flags table", "runbook")
    table: Identifier = doc(
        "flags table (name text primary key, value text, updated_at, updated_by)", "flags"
    )
    channel: Identifier = doc("NOTIFY channel apps LISTEN on", "runbook_flags")


@dataclass(frozen=True)
class CommandFlags:
    type: Literal["command"] = "command"
    get: tuple[str, ...] = doc("argv printing the value of {name} (templated with {name})", ())
    set: tuple[str, ...] = doc("argv setting {name} to {value}", ())
    shell: bool = doc("run through /bin/sh (get/set are then one string each)", False)
    timeout: Timeout = doc("per command", 30.0)


FlagBackendSettings = DotenvFlags | PostgresFlags | CommandFlags


@dataclass(frozen=True)
class AppSettings:
    url: str | None = doc("base URL of the app, e.g. http://localhost:3000", None)
    headers: Mapping[str, str] = doc(
        "headers sent to the app; values usually ${ENV} (redacted in output)", factory=dict
    )


@dataclass(frozen=True)
class PgBossSettings:
    url: str | None = doc("database of pg-boss; default: settings.database.url", None)
    schema: str = doc("pg-boss schema name", "pgboss")


@dataclass(frozen=True)
class LegacySettings:
    """The legacy job table, mapped. Defaults match the real Prisma `"Job"` table."""

    url: str | None = doc("database of the legacy table; default: settings.database.url", None)
    schema: str = doc("schema of the legacy table", "public")
    table: str = doc("legacy job table", "Job")
    id_column: str = doc("primary key column", "id")
    status_column: str = doc("status column", "status")
    created_column: str = doc("creation time column", "createdAt")
    started_column: str | None = doc("start time column", "startedAt")
    completed_column: str | None = doc("completion time column", "completedAt")
    type_column: str | None = doc("job type column, if the table has one", None)
    filter: str | None = doc("extra SQL condition selecting the rows of this migration", None)
    pending: tuple[str, ...] = doc("status values meaning pending", ("PENDING",))
    running: tuple[str, ...] = doc("status values meaning running", ("RUNNING",))
    done: tuple[str, ...] = doc("status values meaning done", ("COMPLETED",))
    failed: tuple[str, ...] = doc("status values meaning failed", ("FAILED",))
    cancelled: tuple[str, ...] = doc("status values meaning cancelled", ("CANCELLED",))
    stale_after: Duration = doc("a running row older than this is stale (crashed worker)", 1800.0)
    timestamps_utc: bool = doc("timestamp columns without time zone hold UTC (Prisma does)", True)


@dataclass(frozen=True)
class TransferSettings:
    """How `migrate transfer legacy` turns a pending legacy row into a pg-boss job (same database only)."""

    queues: Mapping[str, str] = doc(
        "target pg-boss queue per legacy type value (settings.legacy.type_column); without a type column "
        "every claimable row goes to the queue named by --queue",
        factory=dict,
    )
    data: Mapping[str, str] = doc(
        "job data keys and the legacy columns they copy, e.g. {evaluationId: evaluationId}", factory=dict
    )
    data_column: str | None = doc(
        "a json/jsonb (or JSON text) column holding the job's data object; `data` keys are merged over it",
        None,
    )
    legacy_id_key: str | None = doc("data key receiving the legacy row's id; null: not added", "legacyJobId")
    namespace: str = doc(
        "UUID namespace of the deterministic job ids: uuid5(namespace, '<runbook name>:<legacy id>'), so a "
        "rerun never inserts a job twice",
        "6f1d3c2a-8b7e-5f4a-9c3d-2e1b0a9f8e7d",
    )
    retry_limit: int | None = doc("job retryLimit; unset: the queue's, else pg-boss's default (2)", None)
    retry_delay: int | None = doc("job retryDelay in seconds; unset: the queue's, else 0", None)
    priority: int | None = doc("job priority; unset: 0", None)
    expire_in: Timeout | None = doc("job expiry (expireInSeconds); unset: the queue's, else 15 minutes", None)
    start_after_column: str | None = doc(
        "a timestamp (or date) column giving the job's startAfter; unset or null in a row: now", None
    )
    moved: Literal["cancel", "delete", "archive"] = doc(
        "what happens to a moved legacy row: `cancel` (status set to `moved_status`), `delete`, or `archive` "
        "(copied to `archive_table`, then deleted)",
        "cancel",
    )
    moved_status: str | None = doc(
        "status written on a moved row (moved: cancel); unset: the first of settings.legacy.cancelled", None
    )
    marker_column: str | None = doc(
        "a text, uuid or varchar(36+) column receiving the pg-boss job id of a moved row", None
    )
    updated_column: str | None = doc(
        "a timestamp column set to now() on a moved row (Prisma's updatedAt)", None
    )
    archive_table: str | None = doc(
        "table for moved: archive, in settings.legacy.schema, starting with the legacy table's columns in "
        "their order (CREATE TABLE ... (LIKE legacy)); checked before anything moves",
        None,
    )


@dataclass(frozen=True)
class Defaults:
    interval: Duration = doc("monitor sampling interval", 60.0)
    timeout: Timeout = doc("per-check timeout", 10.0)
    verify_deadline: Timeout = doc("how long verify checks may take to pass after a flip", 120.0)
    verify_interval: Timeout = doc("pause between verify attempts", 2.0)
    limits: Limits = doc("default limits of every check", factory=Limits)


@dataclass(frozen=True)
class Webhook:
    url: str = doc("webhook URL (a secret: never printed)", "")
    format: Literal["slack", "json"] = doc("slack-compatible message or a generic JSON event", "json")
    events: tuple[str, ...] = doc("events sent; empty = all", ())


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    state: StateSettings = field(default_factory=StateSettings)
    flags: FlagBackendSettings = field(default_factory=PostgresFlags)
    app: AppSettings = field(default_factory=AppSettings)
    pgboss: PgBossSettings = field(default_factory=PgBossSettings)
    legacy: LegacySettings = field(default_factory=LegacySettings)
    transfer: TransferSettings = field(default_factory=TransferSettings)
    defaults: Defaults = field(default_factory=Defaults)
    notifications: tuple[Webhook, ...] = ()


# --- the runbook --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Runbook:
    version: int
    name: str
    settings: Settings
    flags: tuple[FlagDecl, ...]
    stages: tuple[Stage, ...]
    source: str = "stages.yaml"
    time_scale: float = 1.0
    variables: frozenset[str] = frozenset()
    """The environment variables the file reads through `${...}` (set or not)."""

    def stage(self, stage_id: str) -> Stage:
        for s in self.stages:
            if s.id == stage_id:
                return s
        raise KeyError(stage_id)

    def index(self, stage_id: str) -> int:
        return [s.id for s in self.stages].index(stage_id)

    def next_stage(self, stage_id: str) -> Stage | None:
        i = self.index(stage_id)
        return self.stages[i + 1] if i + 1 < len(self.stages) else None

    @property
    def flag_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.flags)

    def safe_flags(self) -> dict[str, str]:
        return {f.name: f.safe for f in self.flags}

    def desired_flags(self, stage_id: str) -> dict[str, str]:
        """Flags of a stage: safe values, then every stage's `set` merged in order up to this one."""
        flags = self.safe_flags()
        for s in self.stages[: self.index(stage_id) + 1]:
            flags.update(s.set)
        return flags

    def rollback_target(self, stage_id: str) -> Stage:
        """Where a rollback from `stage_id` goes: its `rollback_to`, else the first stage."""
        target = self.stage(stage_id).rollback_to
        return self.stage(target) if target else self.stages[0]

    def state_url(self) -> str | None:
        return self.settings.state.url or self.settings.database.url
