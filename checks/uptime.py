"""`uptime`: the worker has not restarted during the window.

Sources (exactly one): a process's start time via psutil (`pid`, `pid_file` or a `cmdline` pattern; with
several matches the most recent start counts), an HTTP JSON field (`url` + `field`, holding either uptime
seconds or a start timestamp, per `field_is`), or pg-boss 12's instance registry (`pgboss: true`, optional
`instance` name): a live instance started in the window, or one that went quiet without stop() in it
(a crash), is a restart.

The window is `window` back from now, or else since the stage was entered; with neither, only a running
worker is required. A restart within the window is FAIL (saying when); a worker that is not running at all
is FAIL too (it crashed and did not come back); a source that cannot be read is ERROR. The value is the
uptime in seconds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import psycopg

from runbook import contract
from runbook.checks import expect as ex
from runbook.checks import processes
from runbook.checks.base import CheckContext, CheckKind, Measurement, Verdict
from runbook.checks.http import failure_reason, request, shown
from runbook.model import Duration, doc
from runbook.units import count, format_duration, parse_duration


class Unmeasurable(Exception):
    """The start time could not be read: an ERROR verdict."""


class NotRunning(Exception):
    """The watched worker is not running: a FAIL verdict."""


@dataclass(frozen=True)
class UptimeParams:
    pid: int | None = doc("process id of the worker", None)
    pid_file: str | None = doc("file holding the worker's pid", None)
    cmdline: str | None = doc("regular expression matched against each process's command line", None)
    url: str | None = doc("HTTP source: URL (or app path) of a JSON document", None)
    field: str = doc("HTTP source: JSON path of the uptime seconds or start timestamp", "uptime")
    field_is: Literal["uptime", "started_at"] = doc(
        "HTTP source: the field holds uptime seconds, or a start time (ISO 8601 or epoch seconds)", "uptime"
    )
    headers: Mapping[str, str] = doc("HTTP headers; values are secrets", factory=dict)
    pgboss: bool = doc("read pg-boss 12's instance registry (schema 44+)", False)
    instance: str | None = doc("pg-boss source: only instances with this name", None)
    window: Duration | None = doc("no restart within this long; default: since the stage was entered", None)

    def __post_init__(self) -> None:
        if isinstance(self.window, str):  # a human string when built in code
            object.__setattr__(self, "window", parse_duration(self.window))
        self.selector.validate()
        if sum([self.selector.given, self.url is not None, self.pgboss]) != 1:
            raise ValueError(
                "give exactly one source: pid, pid_file or cmdline (a process), url (a JSON field over HTTP) "
                "or pgboss: true (the pg-boss 12 instance registry)"
            )
        if self.url is not None:
            ex.parse_path(self.field)

    @property
    def selector(self) -> processes.Selector:
        return processes.Selector(self.pid, self.pid_file, self.cmdline)


def _from_epoch(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _timestamp(raw: Any) -> dt.datetime:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return _from_epoch(raw / 1000 if raw > 1e11 else raw)  # epoch milliseconds (Date.now()) or seconds
    if isinstance(raw, str):
        at = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return at if at.tzinfo else at.replace(tzinfo=dt.UTC)
    raise ValueError(f"{ex.show(raw)} is not a timestamp")


def started(params: UptimeParams, ctx: CheckContext, since: dt.datetime | None) -> tuple[dt.datetime, str]:
    """When the watched worker last (re)started, and a description. Raises NotRunning or Unmeasurable."""
    import httpx  # on first use: loading a runbook imports every kind module
    import psutil

    if params.selector.given:
        try:
            procs = processes.find(params.selector)
        except processes.NoProcess as exc:
            raise NotRunning(str(exc)) from None
        starts = []
        for p in procs:
            try:
                starts.append((_from_epoch(p.create_time()), p.pid))
            except psutil.Error:
                continue
        if not starts:
            raise NotRunning(f"{params.selector.describe()} exited")
        at, pid = max(starts)
        return at, f"pid {pid}" + (f" (youngest of {len(starts)})" if len(starts) > 1 else "")
    if params.url is not None:
        where = shown(ctx, params.url)
        path, document = ex.parse_path(params.field), None
        try:
            resp = request(ctx, params.url, headers=params.headers)
            if resp.status_code in (404, 405) and contract.endpoint(where):
                raise Unmeasurable(
                    f"GET {where} -> {resp.status_code}, expected 200"
                    + contract.tail(contract.note(where, status=resp.status_code))
                )
            document = resp.json()
            raw = ex.resolve(document, path, params.field)
        except httpx.HTTPError as exc:
            raise Unmeasurable(f"GET {where} failed: {failure_reason(exc)}") from None
        except (ValueError, ex.MissingValue) as exc:
            note = contract.note(where, document=document, paths=[path])
            raise Unmeasurable(f"GET {where}: {exc}" + contract.tail(note)) from None
        try:
            if params.field_is == "uptime":
                if isinstance(raw, bool) or not isinstance(raw, int | float):
                    raise ValueError(f"{params.field} is {ex.show(raw)}, not a number of seconds")
                return ctx.now() - dt.timedelta(seconds=raw), f"{params.field} from {where}"
            return _timestamp(raw), f"{params.field} from {where}"
        except ValueError as exc:
            note = contract.note(where, document=document, paths=[path])
            raise Unmeasurable(str(exc) + contract.tail(note)) from None
    return _from_registry(params, ctx, since)


def _from_registry(
    params: UptimeParams, ctx: CheckContext, since: dt.datetime | None
) -> tuple[dt.datetime, str]:
    from runbook.checks.pgboss import instances

    settings = ctx.runbook.settings.pgboss
    try:
        with ctx.connect(settings.url) as conn:
            rows = instances(conn, settings.schema)
    except psycopg.Error as exc:
        raise Unmeasurable(f"reading the pg-boss instance registry failed: {str(exc).strip()}") from None
    except Exception as exc:  # NoRegistryError (pg-boss 10/11) and friends carry a message and a hint
        message = getattr(exc, "message", None)
        if message is None:
            raise
        raise Unmeasurable(message) from None
    if params.instance is not None:
        rows = [r for r in rows if r.get("name") == params.instance]
    named = f' named "{params.instance}"' if params.instance else ""
    if since is not None:  # quiet without stop() and still live at the window's start: it crashed in it
        crashed = [
            r
            for r in rows
            if not r["live"]
            and r.get("stopped_on") is None
            and r["heartbeat_on"] + dt.timedelta(seconds=3 * (r.get("heartbeat_seconds") or 60)) >= since
        ]
        if crashed:
            last = max(r["heartbeat_on"] for r in crashed)
            raise NotRunning(
                f"{count(len(crashed), 'pg-boss instance')}{named} went quiet without stop() (a crash); "
                f"last heartbeat at {last:%Y-%m-%d %H:%M:%S} UTC"
            )
    live = [r for r in rows if r["live"]]
    if not live:
        raise NotRunning(f"no live pg-boss instance{named} in the registry")
    youngest = max(live, key=lambda r: r["started_on"])
    return youngest["started_on"], f"pg-boss instance pid {youngest.get('pid')} on {youngest.get('host')}"


def measure(params: UptimeParams, ctx: CheckContext) -> Measurement:
    """Read when the worker started and judge it against the window."""
    now = ctx.now()
    since = now - dt.timedelta(seconds=params.window) if params.window is not None else ctx.stage_entered_at
    inputs: dict[str, Any] = {"window_start": since.isoformat() if since else None}
    if params.window is not None:
        inputs["window"] = params.window
    for key in ("pid", "pid_file", "cmdline", "instance"):
        if getattr(params, key) is not None:
            inputs[key] = getattr(params, key)
    if params.url is not None:
        inputs.update(url=shown(ctx, params.url), field=params.field)
    if params.pgboss:
        inputs["source"] = "pg-boss instance registry"
    try:
        at, what = started(params, ctx, since)
    except NotRunning as exc:
        return Measurement(Verdict.FAIL, 0, f"worker not running: {exc}", inputs, unit="s")
    except Unmeasurable as exc:
        return Measurement(Verdict.ERROR, None, str(exc), inputs, unit="s")
    uptime = max(0.0, (now - at).total_seconds())
    inputs["started_at"] = at.isoformat()
    text = f"{what} up {format_duration(uptime)} (since {at:%Y-%m-%d %H:%M:%S} UTC)"
    if since is None:
        return Measurement(Verdict.PASS, round(uptime, 1), f"{text}; no window to check", inputs, unit="s")
    ago = format_duration((now - since).total_seconds())
    if at > since:
        when = f"{at:%Y-%m-%d %H:%M:%S} UTC"
        text = f"restarted {format_duration(uptime)} ago, at {when}, within the window ({ago})"
        return Measurement(Verdict.FAIL, round(uptime, 1), f"{what} {text}", inputs, unit="s")
    return Measurement(
        Verdict.PASS, round(uptime, 1), f"{text}; no restart in the window ({ago})", inputs, unit="s"
    )


KIND = CheckKind(
    name="uptime", params=UptimeParams, measure=measure, summary="no worker restart in the window"
)
