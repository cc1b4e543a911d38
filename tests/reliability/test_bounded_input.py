"""Bounded input, bounded work: hostile runbooks through the real `migrate` (issue 10, section 5).

- YAML alias bombs (a billion "lol"s in 200 bytes) and deep nesting, in every kind of field (a check's
  `body:`, headers, `set:`, `expect:`, a merge key, an unknown key): `validate` exits 2 with a located error,
  in well under a second of CPU and with bounded memory (rusage of the very process);
- an absurd value in every duration, timeout and size field of the model (found by walking the model and
  every check kind, so a new field cannot be forgotten): `validate` exits 2, located FILE:LINE:COL, and
  `gate` says so instead of an `OverflowError` traceback;
- a file that never ends (`-f /dev/zero`) is not read whole.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest

from runbook.checks import available_kinds, get_kind
from runbook.model import Runbook
from runbook.spec.typehints import hints, marker, union_args
from tests.reliability.conftest import MIGRATE, record

CPU_LIMIT = 1.0  # seconds of CPU for one `migrate validate` (interpreter start included)
RSS_LIMIT_KB = 200 * 1024
HEAD = """\
version: 1
name: hostile
settings:
  database:
    url: postgresql://u@127.0.0.1:1/db
flags:
  A: false
stages:
  - id: legacy
  - id: one
    set: {A: true}
    verify:
      - name: h
        kind: http
        url: http://127.0.0.1:1/x
"""
LIST_BOMB = "".join(
    f"  - &l{i} [{', '.join([f'*l{i - 1}'] * 9) if i else ', '.join(['lol'] * 9)}]\n" for i in range(10)
)
MAP_BOMB = "".join(
    f"  - &m{i} {{{', '.join(f'k{j}: *m{i - 1}' if i else f'k{j}: lol' for j in range(9))}}}\n"
    for i in range(10)
)
ANCHORS = f"x-anchors:\n{LIST_BOMB}{MAP_BOMB}"  # an unknown top-level key (an issue of its own) holds them
BOMBS = {
    "http body (list)": HEAD + "        body: *l9\n",
    "http body (mapping)": HEAD + "        body: *m9\n",
    "http body (inline, no anchors block)": HEAD
    + "        body:\n"
    + LIST_BOMB.replace("  - ", "          - "),
    "http headers": HEAD + "        headers: *m9\n",
    "http expect": HEAD + "        expect: *l9\n",
    "merge key of a check": HEAD + "        <<: *m9\n",
    "a flag value in set": HEAD.replace("set: {A: true}", "set: {A: *l9}"),
    "an unused key": HEAD + "        description: *l9\n",
    "nested 400 deep": HEAD + "        body: " + "[" * 400 + "]" * 400 + "\n",
}


LAUNCHER = """
import json, os, subprocess, sys, time
stats, timeout, argv = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
proc = subprocess.Popen(argv, stderr=subprocess.STDOUT)
deadline = time.monotonic() + timeout
while True:
    pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
    if pid:
        break
    if time.monotonic() > deadline:
        proc.kill()
        pid, status, usage = os.wait4(proc.pid, 0)
        break
    time.sleep(0.01)
with open(stats, "w") as f:
    code = os.waitstatus_to_exitcode(status)
    json.dump({"code": code, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss}, f)
"""
"""Runs `migrate` as its child and writes its exit code and rusage: a child forked straight from this pytest
process would carry pytest's own resident size into its peak RSS (Linux keeps the high-water mark across
exec), so the figure would grow with whatever the test session had loaded before."""


def run_measured(args: list[str], cwd: Path, timeout: float = 30.0) -> tuple[int, str, float, int]:
    """Run `migrate ARGS`; its exit code, output, CPU seconds and peak RSS (KB) from its own rusage."""
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "stats.json"
        run = subprocess.run(
            [sys.executable, "-c", LAUNCHER, str(stats), str(timeout), *MIGRATE, *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout + 30,
        )
        got = json.loads(stats.read_text())
    text = run.stdout.decode("utf-8", "replace")
    if got["code"] == -9:
        pytest.fail(f"migrate {' '.join(args)} still running after {timeout}s: {text[-500:]!r}")
    return got["code"], text, got["cpu"], got["rss"]


LOCATED = re.compile(r"^(?:error: )?\S+\.yaml:\d+:\d+: ", re.M)


def test_alias_bombs_and_deep_nesting_exit_2_fast_in_every_field(tmp_path: Path) -> None:
    worst_cpu, worst_rss = 0.0, 0
    for label, body in BOMBS.items():
        text = body if label.startswith("nested") or "inline" in label else ANCHORS + body
        (tmp_path / "stages.yaml").write_text(text)
        code, out, cpu, rss = run_measured(["validate"], tmp_path)
        assert code == 2, (label, out)
        assert "Traceback" not in out, (label, out)
        assert LOCATED.search(out), (label, out)
        assert "through YAML aliases" in out or "expanded" in out or "levels deep" in out, (label, out)
        assert cpu < CPU_LIMIT, (label, cpu)
        assert rss < RSS_LIMIT_KB, (label, rss)
        worst_cpu, worst_rss = max(worst_cpu, cpu), max(worst_rss, rss)
    (tmp_path / "endless").symlink_to("/dev/zero")
    code, out, cpu, rss = run_measured(["-f", "endless", "validate"], tmp_path)
    assert code == 2 and "larger than 2 MiB" in out and rss < RSS_LIMIT_KB, out
    record(
        f"RELIABILITY input: {len(BOMBS)} alias bombs / deep nestings in {len(BOMBS)} fields and a file "
        f"without end: all exit 2, located; worst {worst_cpu:.2f}s CPU, {worst_rss // 1024} MB peak RSS"
    )


# --- every duration, timeout and size field ----------------------------------------------------------

MAIN = """\
version: 1
name: bounds
settings:
  database:
    url: postgresql://u@127.0.0.1:1/db
    statement_timeout: {DatabaseSettings.statement_timeout}
    connect_timeout: {DatabaseSettings.connect_timeout}
  state:
    sample_retention: {StateSettings.sample_retention}
  flags:
    type: dotenv
    path: app.env
    reload_timeout: {DotenvFlags.reload_timeout}
  legacy:
    stale_after: {LegacySettings.stale_after}
  transfer:
    expire_in: {TransferSettings.expire_in}
  defaults:
    interval: {Defaults.interval}
    timeout: {Defaults.timeout}
    verify_deadline: {Defaults.verify_deadline}
    verify_interval: {Defaults.verify_interval}
flags:
  A: false
stages:
  - id: legacy
    soak: {Stage.soak}
  - id: one
    set: {{A: true}}
    verify_deadline: {Stage.verify_deadline}
    interval: {Stage.interval}
    soak:
      duration: {Soak.duration}
    monitor:
      - name: pgb
        kind: pgboss
        metric: backlog
        queue: q
        window: {PgBossParams.window}
        max_staleness: {PgBossParams.max_staleness}
        timeout: {CheckSpec.timeout}
      - name: leg
        kind: legacy
        metric: stale_running
        window: {LegacyParams.window}
        stale_after: {LegacyParams.stale_after}
      - name: mem
        kind: memory
        url: http://127.0.0.1:1/m
        field: rss
        field_unit: {MemoryParams.field_unit}
        max: {MemoryParams.max}
        growth_per_hour: {MemoryParams.growth_per_hour}
        min_span: {MemoryParams.min_span}
      - name: up
        kind: uptime
        url: http://127.0.0.1:1/u
        window: {UptimeParams.window}
"""
COMMAND = """\
version: 1
name: bounds
settings:
  flags:
    type: command
    get: [echo, "A=false"]
    set: ["true"]
    timeout: {CommandFlags.timeout}
flags:
  A: false
stages:
  - id: legacy
"""
ABSURD_SECONDS = ("99999999999999999999999d", "9" * 400 + "s", str(10**30), "366d", "53w")
ABSURD_TIMEOUTS = ("99999999999999999999999d", "25h", "9" * 400 + "ms", str(10**30))
ABSURD_SIZES = ("9" * 400 + "MB", "2TiB", str(10**30), "99999999999999999999999GB")


def bounded_fields() -> set[str]:
    """`Class.field` of every duration, timeout and size field of the model and of every check kind (not
    identifiers, nor thresholds: a max/min is a number in its metric's unit, bounded only when written as a
    duration or a size, tests/data/runbooks/bad/53-threshold-units.yaml)."""
    found: set[str] = set()
    seen: set[type] = set()

    def walk(cls: type) -> None:
        if cls in seen:
            return
        seen.add(cls)
        for name, tp in hints(cls).items():
            for member in union_args(tp) or (tp,):
                if marker(member) in ("duration", "timeout", "size"):
                    found.add(f"{cls.__name__}.{name}")
                for inner in (member, *get_args(member)) if get_origin(member) else (member,):
                    for t in union_args(inner) or (inner,):
                        if dataclasses.is_dataclass(t) and isinstance(t, type):
                            walk(t)

    walk(Runbook)
    for kind in available_kinds():
        walk(get_kind(kind).params)
    return found


def kind_of(field: str) -> str:
    cls, name = field.split(".")
    tp: Any = hints({c.__name__: c for c in _classes()}[cls])[name]
    marks = [marker(m) for m in union_args(tp) or (tp,)]
    return next(m for m in marks if m)


def _classes() -> list[type]:
    out: list[type] = []
    stack: list[Any] = [Runbook, *(get_kind(k).params for k in available_kinds())]
    while stack:
        tp = stack.pop()
        for t in (*(union_args(tp) or (tp,)), *get_args(tp)):
            if dataclasses.is_dataclass(t) and isinstance(t, type) and t not in out:
                out.append(t)
                stack.extend(hints(t).values())
            elif get_args(t):
                stack.extend(get_args(t))
    return out


def fill(template: str, absurd: bool) -> tuple[str, dict[int, str]]:
    """The template with every field set (absurd or sensible), and field by line number."""
    fields = re.findall(r"\{(\w+\.\w+)\}", template)
    values: dict[str, str] = {}
    for i, field in enumerate(fields):
        kind = "soak" if field == "Stage.soak" else kind_of(field)
        pool = {"duration": ABSURD_SECONDS, "soak": ABSURD_SECONDS, "timeout": ABSURD_TIMEOUTS}.get(
            kind, ABSURD_SIZES
        )
        sensible = {"size": "100MB", "timeout": "10s"}.get(kind, "1h")
        values[field] = pool[i % len(pool)] if absurd else sensible
    text = (
        re.sub(r"\{(\w+\.\w+)\}", lambda m: values[m.group(1)], template)
        .replace("{{", "{")
        .replace("}}", "}")
    )
    lines = {n + 1: f for n, line in enumerate(template.splitlines()) for f in fields if f"{{{f}}}" in line}
    return text, lines


def test_absurd_durations_and_sizes_in_every_field_exit_2_located(tmp_path: Path, pg_url: str) -> None:
    covered = set(re.findall(r"\{(\w+\.\w+)\}", MAIN + COMMAND)) - {"Stage.soak"}
    assert covered == bounded_fields(), "a duration/size field is not in this test: add it to MAIN"
    tried = 0
    for template in (MAIN, COMMAND):
        good, _ = fill(template, absurd=False)
        (tmp_path / "stages.yaml").write_text(good)
        code, out, _, _ = run_measured(["validate"], tmp_path)
        assert code == 0, out
        bad, lines = fill(template, absurd=True)
        (tmp_path / "stages.yaml").write_text(bad)
        code, out, _, _ = run_measured(["validate"], tmp_path)
        assert code == 2 and "Traceback" not in out, out
        reported = {int(m) for m in re.findall(r"stages\.yaml:(\d+):\d+: ", out)}
        assert reported == set(lines), (sorted(set(lines) - reported), out)
        assert all(
            re.search(r"at most (365d|24h|1TiB)|too (long|large) to count", ln) for ln in out.splitlines()
        )
        tried += len(lines)
    # the example, through `gate` (it crashed with OverflowError after measuring)
    (tmp_path / "stages.yaml").write_text(
        "version: 1\nname: g\nsettings:\n  database:\n    url: ${DATABASE_URL}\n  flags:\n    type: dotenv\n"
        "    path: app.env\nflags:\n  A: false\nstages:\n  - id: legacy\n    monitor:\n      - name: m\n"
        '        kind: sql\n        query: SELECT 1\n        expect: ["value == 1"]\n'
        "        timeout: 99999999999999999999999d\n  - id: one\n    set: {A: true}\n"
    )
    (tmp_path / "app.env").write_text("A=false\n")
    env = {**os.environ, "DATABASE_URL": pg_url}
    proc = subprocess.run(
        [*MIGRATE, "gate"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "stages.yaml:18:18: stages[0].monitor[0].timeout: a timeout can be at most 24h" in proc.stderr
    # the same bound on the command line: `watch --interval` (it ended in a DatetimeFieldOverflow traceback)
    text = (tmp_path / "stages.yaml").read_text().replace("99999999999999999999999d", "5s")
    (tmp_path / "stages.yaml").write_text(text)
    args = ["watch", "--interval", "99999999999999999999d", "--max-samples", "1"]
    proc = subprocess.run(
        [*MIGRATE, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "--interval" in proc.stderr and "at most 365d" in proc.stderr, proc.stderr
    record(
        f"RELIABILITY input: {tried + 1} absurd durations, timeouts and sizes ({len(bounded_fields())} "
        "fields of the model and the check kinds, plus the soak shorthand): all exit 2, located; gate too; "
        "watch --interval 99999999999999999999d exits 2"
    )
