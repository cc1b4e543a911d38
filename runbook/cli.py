"""The `migrate` command line: thin click commands that parse, call one function of the commands API, and
hand its result to the output object. Nothing else lives here."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from runbook import __version__
from runbook.cliglobals import GlobalGroup, Globals, global_options, settings_from
from runbook.errors import RunbookError, UsageError
from runbook.exitcodes import ExitCode
from runbook.operations import OPERATIONS

F = TypeVar("F", bound=Callable[..., Any])
LONG_RUNNING = frozenset({"watch", "demo"})
"""Commands that keep Python's cyclic garbage collector on."""


@dataclass
class Cli(Globals):
    """What every command gets: the global options' settings (runbook path, output object, environment) and
    the sessions it opens."""

    sessions: list[Any] = field(default_factory=list)
    """Sessions this invocation opened; `close` closes them (and delivers their notifications)."""

    def session(self, path: str | None = None) -> Any:
        """A session over `path`, by default the one runbook -f names (several are for `migrate watch`)."""
        from runbook.session import Session

        if path is None and len(self.files) > 1:
            raise UsageError(
                f"{len(self.files)} runbooks given (-f {' -f '.join(self.files)}); only watch takes several",
                hint="give one -f",
            )
        s = Session.open(path or self.file, env=self.env, progress=self.output.progress, confirm=_confirm)
        s.meter = self.output.meter
        self.output.redact.add(*s.secrets())  # every output of this invocation masks the runbook's secrets
        self.sessions.append(s)
        return s

    def run(self, fn: Callable[[], Any]) -> None:
        """Call a commands-API function, render its result, close its session, exit with its code."""
        try:
            code = self._call(fn)
        finally:  # every way out (result, error, Ctrl-C, SystemExit, --traceback): notifications go first
            self.close()
        sys.exit(code)

    def _call(self, fn: Callable[[], Any]) -> int:
        try:
            result = fn()
        except RunbookError as exc:
            if self.traceback:
                raise
            self.output.error(exc)
            return int(exc.exit_code)
        except KeyboardInterrupt:
            self.output.error(
                RunbookError("interrupted", hint="run `migrate status` to see where things are")
            )
            return int(ExitCode.NOT_READY)
        self.output.emit(result)
        return int(result.exit_code)

    def close(self) -> None:
        """Close every session opened (waiting, bounded, for its notifications); say what was kept."""
        while self.sessions:
            s = self.sessions.pop()
            try:
                s.close()
            except KeyboardInterrupt:
                continue  # a second Ctrl-C while closing: the next session still closes
            if s.notice is not None:
                self.output.notice(s.notice)


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    return click.confirm(question, default=False, err=True)


pass_cli = click.make_pass_decorator(Cli)


@click.group(
    cls=GlobalGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="The options above also work after the command: `migrate status -o json`, "
    "`migrate validate -f ops/stages.yaml`.",
)
@click.version_option(__version__, prog_name="migrate")
@global_options
@click.pass_context
def main(ctx: click.Context, /, **values: Any) -> None:
    """Walk a staged, flag-gated migration: measure, flip flags, soak, roll back."""
    if ctx.invoked_subcommand not in LONG_RUNNING:
        # A short command loads its modules and the runbook once and exits: the cyclic collector would only
        # walk those objects again and again (about 7% of `migrate status`). Reference counting still frees
        # everything else; watch and demo, which run for hours, keep the collector. (On again on close, for
        # callers that invoke the CLI in their own process.)
        gc.disable()
        ctx.call_on_close(gc.enable)
    ctx.obj = settings_from(ctx, Cli(), values)  # a global option typed after the command overrides these
    ctx.call_on_close(ctx.obj.close)  # sessions opened outside `Cli.run` close too


@main.command(short_help="Check the runbook file (no connections).")
@click.argument("path", metavar="[FILE]", required=False)
@pass_cli
def validate(cli: Cli, path: str | None) -> None:
    """Check the runbook FILE (default: -f, else stages.yaml) without touching anything."""
    from runbook.commands.validate import validate as run

    if path is not None and cli.file_typed and path != cli.file:
        cli.output.error(UsageError(f"two runbook files: {path} and -f {cli.file}", hint="give one of them"))
        sys.exit(int(ExitCode.USAGE))
    cli.run(lambda: run(path or cli.file, cli.env))


@main.command(short_help="Print the JSON Schema of the format, or of the app contract.")
@click.option(
    "--contract",
    type=click.Choice(["health", "pgboss-status"]),
    default=None,
    help="Instead: the schema of this app endpoint, with the runbook's (-f) flag and queue names.",
)
@pass_cli
def schema(cli: Cli, contract: str | None) -> None:
    """Print the JSON Schema of the runbook format; with --contract, the JSON Schema of an endpoint the
    runbook (-f) reads from the app, named after its flags and queues (check your app's answers with any
    JSON Schema tool)."""
    from runbook.commands.schema import contract_schema, schema

    cli.output.fmt = "json"
    if contract is None:
        cli.run(schema)
    else:
        cli.run(lambda: contract_schema(cli.file, contract, cli.env))


@main.command(short_help="Write stages.yaml, flags file, CI pipeline.")
@click.option("--dir", "directory", default=".", show_default=True, help="Where to write the files.")
@click.option("--ci", type=click.Choice(["github", "gitlab"]), default=None, help="Also write a CI pipeline.")
@click.option("--force", is_flag=True, help="Overwrite existing files (not .env.flags: the live flags).")
@click.option(
    "--role", default=None, metavar="NAME", help="Also write runbook-role.sql: a least-privilege role NAME."
)
@click.option(
    "--install-from",
    default=None,
    metavar="SOURCE",
    help="What the pipeline installs: a wheel path or a VCS URL at a commit (default: runbook-pgboss==this).",
)
@click.option(
    "--deploy", default=None, metavar="TARGET", help="Also write manifests: kubernetes (deploy/kubernetes/)."
)
@click.option("--namespace", default=None, help="[--deploy] Namespace of every object (default: kubectl's).")
@click.option("--name", default=None, help="[--deploy] Prefix of the objects' names (default: runbook).")
@click.option("--image", default=None, help="[--deploy] An image with migrate in it (default: pip install).")
@click.option("--replicas", type=int, default=None, help="[--deploy] Watcher replicas (default: 2).")
@click.option("--metrics-port", type=int, default=None, help="[--deploy] Metrics and probes port (9464).")
@click.option("--gate-cron", default=None, help='[--deploy] When the gate runs (UTC; "*/15 * * * *").')
@click.option("--secret-name", default=None, help="[--deploy] The Secret to read (default: <name>-secrets).")
@click.option("--database-key", default=None, help="[--deploy] Its key holding DATABASE_URL (DATABASE_URL).")
@click.option("--secret", "secrets", multiple=True, metavar="VAR", help="[--deploy] Also read VAR from it.")
@click.option("--env", "env_vars", multiple=True, metavar="NAME=VALUE", help="[--deploy] A plain variable.")
@click.option("--service-monitor", is_flag=True, default=None, help="[--deploy] Apply its ServiceMonitor.")
@pass_cli
def init(
    cli: Cli,
    /,
    directory: str,
    ci: str | None,
    force: bool,
    role: str | None,
    install_from: str | None,
    deploy: str | None,
    env_vars: tuple[str, ...],
    **deploy_options: Any,
) -> None:
    """Write stages.yaml, a flags file and optionally a CI pipeline, Kubernetes manifests and a
    least-privilege role script."""
    from runbook.commands.init import init as run

    deploy_options["env"] = env_vars
    cli.run(
        lambda: run(
            directory,
            ci=ci,
            force=force,
            runbook_file=cli.file,
            role=role,
            env=cli.env,
            install_from=install_from,
            deploy=deploy,
            deploy_options={k: v for k, v in deploy_options.items() if v not in (None, ())},
        )
    )


@main.command(short_help="The next transition: flag diff and blockers.")
@click.option(
    "--check", is_flag=True, help="Also run the next stage's preflight and the current monitors now."
)
@pass_cli
def plan(cli: Cli, check: bool) -> None:
    """Show the next transition: flag diff, checks, soak, blockers."""
    from runbook.commands.plan import plan as run

    cli.run(lambda: run(cli.session(), check=check))


@main.command(short_help="Enter the next stage (preflight, flip, verify).")
@click.option("--dry-run", is_flag=True, help="Measure and show what would happen; change nothing.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask before flipping flags.")
@click.option("--force", is_flag=True, help="Advance even though checks fail (needs --reason; audited).")
@click.option("--reason", default=None, help="Why; recorded in the history.")
@click.option("--confirm", "confirms", multiple=True, metavar="ITEM", help="Confirm a manual checklist item.")
@pass_cli
def advance(
    cli: Cli, dry_run: bool, yes: bool, force: bool, reason: str | None, confirms: tuple[str, ...]
) -> None:
    """Enter the next stage: preflight, flip flags, verify (rolls back by itself on failure)."""
    from runbook.commands.advance import advance as run

    if force and not reason:
        cli.output.error(UsageError("--force needs --reason", hint='add --reason "why this is safe"'))
        sys.exit(int(ExitCode.USAGE))
    cli.run(
        lambda: run(cli.session(), dry_run=dry_run, yes=yes, force=force, reason=reason, confirms=confirms)
    )


@main.command(short_help="Roll back now; report work left behind.")
@click.option(
    "--to", "to_stage", default=None, help="Stage to roll back to (default: the stage's rollback_to)."
)
@click.option("--reason", default=None, help="Why; recorded in the history.")
@click.option("--force", is_flag=True, help="Roll back past an irreversible stage (needs --reason).")
# Kept for scripts that pass -y to every command (advance -y / rollback -y); not passed to the function
@click.option(
    "-y", "--yes", is_flag=True, expose_value=False, help="Accepted for symmetry; rollback never asks."
)
@pass_cli
def rollback(cli: Cli, to_stage: str | None, reason: str | None, force: bool) -> None:
    """Roll back now (flags first); report work left in pg-boss."""
    from runbook.commands.rollback import rollback as run

    cli.run(lambda: run(cli.session(), to=to_stage, reason=reason, force=force))


@main.command(short_help="Stage, flags (drift), soak, latest values.")
@pass_cli
def status(cli: Cli) -> None:
    """Show stage, desired vs actual flags (drift), soak, latest values."""
    from runbook.commands.status import status as run

    cli.run(lambda: run(cli.session()))


@main.command(short_help="The audit log, with the measurements.")
@click.option(
    "-n", "--limit", default=50, show_default=True, type=click.IntRange(min=1), help="How many events."
)
@click.option(
    "--operation",
    type=click.Choice(OPERATIONS),
    default=None,
    metavar="OP",
    help="Only events of this operation: " + ", ".join(OPERATIONS) + ".",
)
@pass_cli
def history(cli: Cli, limit: int, operation: str | None) -> None:
    """Show the audit log: who did what, why, and the measurements behind it."""
    from runbook.commands.history import history as run

    cli.run(lambda: run(cli.session(), limit=limit, operation=operation))


@main.command(short_help="Release a lock or watcher lease whose holder is gone or hung.")
@click.option("--reason", default=None, help="Why; recorded in the history.")
@click.option(
    "--force",
    is_flag=True,
    help="Also end a holder still running on this host, or a watcher's lease held on another host (needs "
    "--reason; audited).",
)
@pass_cli
def unlock(cli: Cli, reason: str | None, force: bool) -> None:
    """Release a lock left by a process that is gone or hung, and the lease of a watcher gone from this
    host. A holder still running on this host is not ended without --force; a lock holder on another host is
    not looked at; a watcher lease held on another host needs --force."""
    from runbook.commands.unlock import unlock as run

    cli.run(lambda: run(cli.session(), reason=reason, force=force))


@main.command(short_help="CI gate: monitors + next preflight, once.")
@click.option("--rollback-on-failure", is_flag=True, help="Roll back when a monitor breaches its limits.")
@click.option("--junit", default=None, metavar="FILE", help="Write JUnit XML (one test case per check).")
@click.option(
    "--summary", default=None, metavar="FILE", help="Write a markdown summary ($GITHUB_STEP_SUMMARY if set)."
)
@pass_cli
def gate(cli: Cli, rollback_on_failure: bool, junit: str | None, summary: str | None) -> None:
    """CI gate: run the monitors and next preflight once; exit 1 on failure."""
    from runbook.commands.gate import gate as run

    cli.run(lambda: run(cli.session(), rollback_on_failure=rollback_on_failure, junit=junit, summary=summary))


@main.command(short_help="Sample monitors; roll back on breach.")
@click.option("--interval", default=None, help="Sampling interval (default: the stage's, else 60s).")
@click.option(
    "--auto-advance", is_flag=True, help="Advance by itself when soak, monitors and preflight allow."
)
@click.option("--max-samples", type=click.IntRange(min=1), default=None, help="Stop after this many rounds.")
@click.option(
    "--wait", "wait_for_lease", is_flag=True, help="Wait for another watcher's lease instead of exiting."
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve Prometheus /metrics, /healthz and /readyz on this port (0: a free one, printed).",
)
@click.option(
    "--metrics-address", default=None, metavar="ADDR", help="Address to serve on (default 127.0.0.1)."
)
@click.option(
    "--metrics-linger",
    default="30s",
    show_default=True,
    metavar="DURATION",
    help="When the watch ends by itself: keep /metrics up until scraped once, at most this long.",
)
@pass_cli
def watch(
    cli: Cli,
    interval: str | None,
    auto_advance: bool,
    max_samples: int | None,
    wait_for_lease: bool,
    metrics_port: int | None,
    metrics_address: str | None,
    metrics_linger: str,
) -> None:
    """Watch the stage: sample, roll back on breach, optionally auto-advance.

    Several runbooks (-f repeated, or -f a folder of *.yaml/*.yml): each in its own thread with its own
    lease; lines start with the runbook's name; the exit code is the worst of theirs. Replicas given the
    same runbooks with --wait share them."""
    from runbook.commands.watch import watch as run
    from runbook.watchview import WatchPrinter, announce_metrics, stop_on_signals

    every = _seconds(cli, interval, "--interval", positive="30s") if interval is not None else None
    linger = _seconds(cli, metrics_linger, "--metrics-linger", scaled=False)
    if metrics_address is not None and metrics_port is None:
        raise click.UsageError("--metrics-address needs --metrics-port (the port to serve metrics on)")
    cli.output.json_lines = True  # -o json: a round an object a line, then the result (or error) on one line
    stop = stop_on_signals(cli.output)

    options: dict[str, Any] = {"interval": every, "auto_advance": auto_advance, "max_rounds": max_samples}
    options["wait_for_lease"] = wait_for_lease

    def go() -> Any:
        from runbook.commands.fleet import distinct_names, runbook_paths, watch_fleet

        paths = runbook_paths(cli.files)
        fleet = len(paths) > 1 or any(os.path.isdir(p) for p in cli.files)
        server = None
        if metrics_port is not None:  # bound first: a port in use fails before any connection is made
            from runbook.metricserver import MetricsServer

            server = MetricsServer(metrics_address or "127.0.0.1", metrics_port)
            server.metrics.fleet = fleet
            close = server.finish
            click.get_current_context().call_on_close(lambda: close(stop, linger, cli.output.progress))
            announce_metrics(cli.output, server.url)
        sessions = [cli.session(p) for p in paths]
        for s in sessions if len(sessions) > 1 else ():
            s.keep_check_connections = False  # one kept connection per runbook, not two
        distinct_names(sessions, paths)

        def on_round(session: Any) -> Callable[[Any], None]:
            printer = WatchPrinter(cli.output, session.name if fleet else None)
            return printer if server is None else server.feed(session, printer)

        if not fleet:
            return run(sessions[0], stop=stop, on_round=on_round(sessions[0]), **options)
        hooks: dict[str, Any] = {}
        if server is not None:
            hooks = {"ended": server.metrics.released, "beat": server.metrics.beat}
        if wait_for_lease:  # replicas: a session of its own keeps the heartbeat and shares the runbooks out
            hooks["coordinator"] = cli.session(paths[0])
        return watch_fleet(sessions, stop=stop, on_round=on_round, **hooks, **options)

    cli.run(go)


def _seconds(cli: Cli, text: str, option: str, *, scaled: bool = True, positive: str | None = None) -> float:
    """A duration option in seconds (scaled by RUNBOOK_TIME_SCALE as the runbook's intervals, if `scaled`).
    With `positive` (a valid example), 0 is refused: the option would mean nothing (or spin) at 0."""
    from runbook.spec.budget import check_seconds
    from runbook.units import parse_duration, time_scale

    try:
        seconds = parse_duration(text)
        check_seconds(seconds, "duration", f'"{text}"')  # as the runbook's intervals
        if positive is not None and not seconds > 0:
            raise ValueError(f'must be more than 0, got "{text}"; e.g. {option} {positive}')
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None
    return seconds * time_scale(cli.env) if scaled else seconds


@main.command(short_help="Write the HTML report.")
@click.option(
    "--out", "path", default="runbook-report.html", show_default=True, help="The HTML file to write."
)
@pass_cli
def report(cli: Cli, path: str) -> None:
    """Write an HTML report: timeline, decisions, charts of monitored values."""
    from runbook.commands.report import report as run

    cli.run(lambda: run(cli.session(), path=path))


@main.command(short_help="Suggest thresholds, min_jobs, soaks from history.")
@click.option(
    "--window", default="7d", show_default=True, metavar="DURATION", help="How far back to read the history."
)
@click.option(
    "--write", is_flag=True, help="Put the suggestions into the runbook file (shows the diff first)."
)
@click.option("-y", "--yes", is_flag=True, help="With --write: write without asking.")
@click.option(
    "--allow-scan", is_flag=True, help="Read a large legacy table without an index on its completed column."
)
@pass_cli
def calibrate(cli: Cli, window: str, write: bool, yes: bool, allow_scan: bool) -> None:
    """Read the history the databases hold (legacy table, pg-boss) and suggest thresholds, minimum work and
    soak lengths for the runbook's checks, with the reasoning. Read-only unless --write."""
    from runbook.commands.calibrate import calibrate as run

    seconds = _seconds(cli, window, "--window", scaled=False)
    cli.run(lambda: run(cli.session(), cli.file, window=seconds, write=write, yes=yes, allow_scan=allow_scan))


@main.command(short_help="Write the app half: flags client, queue manager, endpoints.")
@click.option(
    "--out",
    default="runbook-app",
    show_default=True,
    help="Folder to write into: runbook/ (flags, queue manager, status, runtime) and, for next, app/api/... "
    "(pass the folder holding your app/ folder, e.g. --out src, to serve the routes as they are).",
)
@click.option(
    "--framework",
    type=click.Choice(["next", "express"]),
    default=None,
    help="Default: what the files already in --out were written with, else next.",
)
@click.option(
    "--lang",
    type=click.Choice(["ts", "js"]),
    default=None,
    help="js: ESM JavaScript. Default: what the files in --out were written with, else ts.",
)
@click.option(
    "--pgboss",
    type=click.Choice(["10", "11", "12"]),
    default=None,
    help="pg-boss major (default: read from package-lock.json / package.json in --app).",
)
@click.option(
    "--app", default=None, metavar="DIR", help="The app's folder (its package.json); default: here."
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 with a diff when the files differ.")
@click.option("--force", is_flag=True, help="Also overwrite files edited since scaffold wrote them.")
@pass_cli
def scaffold(cli: Cli, /, **options: Any) -> None:
    """Write the app half of the runbook, named after it (flags, queues, schema, flag table): a flags client,
    the plan's queue manager done right for the app's pg-boss major, and the endpoints migrate reads."""
    from runbook.commands.scaffold import scaffold as run

    cli.run(lambda: run(cli.file, env=cli.env, **options))  # each option is the commands API's argument


@main.group(short_help="Move queued work: legacy rows into pg-boss, pg-boss into pg-boss.")
def transfer() -> None:
    """Move queued work exactly once (the runbook's settings.transfer mapping)."""


@transfer.command("legacy", short_help="Move claimable legacy rows into a pg-boss queue.")
@click.option("--queue", required=True, help="Target pg-boss queue (must exist; standard policy).")
@click.option(
    "--type", "type_value", default=None, help="Only rows of this legacy type (settings.legacy.type_column)."
)
@click.option(
    "--batch", type=click.IntRange(min=1), default=250, show_default=True, help="Rows per transaction."
)
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=16),  # runbook.model.TRANSFER_WORKERS_MAX
    default=1,  # runbook.commands.transfer.WORKERS
    show_default=True,
    help="Batches moved at once, each on its own connection (2: faster, each batch holds its rows longer).",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Move at most this many rows.")
@click.option(
    "--filter",
    "row_filter",
    default=None,
    metavar="SQL",
    help="Only rows matching this SQL condition (ANDed into the claim; checked with EXPLAIN first).",
)
@click.option("--dry-run", is_flag=True, help="Count per type and show a sample; lock and write nothing.")
@pass_cli
def transfer_legacy(cli: Cli, /, **options: Any) -> None:
    """Claim pending legacy rows (FOR UPDATE SKIP LOCKED: never one a legacy worker holds), insert their jobs
    with deterministic ids (ON CONFLICT DO NOTHING) and mark the rows, one transaction per batch. Safe to
    rerun after a crash: nothing is lost or inserted twice."""
    from runbook.commands.transfer import transfer_legacy as run

    cli.run(lambda: run(cli.session(), **options))  # each option is the commands API's argument of its name


@transfer.command(
    "pgboss", short_help="Move unfinished jobs between pg-boss schemas or databases (10/11/12 -> 11/12)."
)
@click.option("--from-schema", required=True, help="Source pg-boss schema (10, 11 or 12 layout).")
@click.option(
    "--from-url", default=None, help="Source database (default: settings.pgboss.url / database.url)."
)
@click.option(
    "--to-schema", required=True, help="Target pg-boss schema (11 or 12 layout; missing queues are made)."
)
@click.option("--to-url", default=None, help="Target database (default: settings.pgboss.url / database.url).")
@click.option("--queue", "queues", multiple=True, help="Only this queue (repeatable; default: every queue).")
@click.option(
    "--batch", type=click.IntRange(min=1), default=500, show_default=True, help="Jobs per transaction."
)
@click.option("--dry-run", is_flag=True, help="Count per queue and state, show a sample; write nothing.")
@click.option("--include-active", is_flag=True, help="Also move active jobs past their expiry (as retries).")
@pass_cli
def transfer_pgboss(cli: Cli, /, **options: Any) -> None:
    """Copy created and retry jobs (ids, data, options kept) into the target and remove them from the source
    once the copy committed: one transaction per batch in one database; across two, a ledger in runbook's
    state schema of the target. Safe to rerun after a crash: nothing is lost or copied twice."""
    from runbook.commands.transfer_pgboss import transfer_pgboss as run

    cli.run(lambda: run(cli.session(), **options))


@main.command()
@click.option(
    "--pgboss", type=click.Choice(["10", "12"]), default="12", show_default=True, help="pg-boss line."
)
@click.option("--keep", is_flag=True, help="Leave the database and the app running until Ctrl-C.")
@click.option("--transcript", default=None, metavar="FILE", help="Also write the story and summary to FILE.")
@pass_cli
def demo(cli: Cli, pgboss: str, keep: bool, transcript: str | None) -> None:
    """The whole migration, on an embedded database with the example app and real pg-boss (a few minutes)."""
    from runbook.commands.demo import demo as run

    def say(line: str) -> None:
        click.echo(cli.output.redact(line), err=cli.output.fmt != "text")

    cli.run(lambda: run(pgboss=pgboss, keep=keep, say=say, transcript=transcript))
