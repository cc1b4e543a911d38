"""`migrate watch` over several runbooks in one process (issue 14 part 2), through the CLI on real
PostgreSQL: -f repeated and -f a folder, each runbook in its own thread with its own lease, lines prefixed by
the runbook's name (a `runbook` key in JSON), the exit code the worst of the runbooks', a dead state database
or a hanging check never stalling the others, SIGTERM releasing every lease; bad input exits 2."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from tests.cli.conftest import RUNBOOK, Outcome

Migrate = Callable[..., Outcome]
HANGS = '      - name: healthy\n        kind: command\n        run: [sleep, "30"]\n        timeout: 1s\n'


def write_runbook(folder: Path, name: str, *, monitor: str = "0", hangs: bool = False, url: str = "") -> Path:
    """Runbook `name` (its own flags file), its monitor `SELECT monitor` (or a command that hangs)."""
    text = RUNBOOK.replace("name: cli-test", f"name: {name}").replace("path: app.env", f"path: {name}.env")
    text = text.replace("${MONITOR_VALUE:-0}", monitor)
    if hangs:
        text = re.sub(r"      - name: healthy\n(        .*\n)+?(?=  - id: two)", HANGS, text)
    if url:
        text = text.replace("url: ${DATABASE_URL}", f"url: {url}")
    (folder / f"{name}.env").write_text("PGBOSS_ENABLED=false\n")
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def started(migrate: Migrate, *paths: Path) -> None:
    for p in paths:
        r = migrate("-f", str(p), "advance", "--yes")
        assert r.code == 0, r.text


def test_two_runbooks_in_one_process_lines_prefixed_exit_code_worst(rb_dir: Path, migrate: Migrate) -> None:
    a, b = write_runbook(rb_dir, "fleet-a"), write_runbook(rb_dir, "fleet-b")
    started(migrate, a, b)
    r = migrate("-f", str(a), "-f", str(b), "watch", "--interval", "0.2s", "--max-samples", "3")
    assert r.code == 0, r.text
    lines = r.err.splitlines()
    for name in ("fleet-a", "fleet-b"):
        assert [ln.split(" ")[1] for ln in lines if ln.startswith(f"{name}: #")] == ["#1", "#2", "#3"], r.err
        assert f"{name}: Watch stopped after 3 rounds (limit); stage one." in r.out

    r = migrate("-o", "json", "-f", str(a), "-f", str(b), "watch", "--interval", "0.2s", "--max-samples", "2")
    assert r.code == 0, r.text
    assert r.err == ""  # one JSON object per line on stdout: each round (with `runbook`), then the result
    *rounds, body = [json.loads(ln) for ln in r.out.splitlines()]
    assert sorted((o["runbook"], o["n"]) for o in rounds) == [
        ("fleet-a", 1),
        ("fleet-a", 2),
        ("fleet-b", 1),
        ("fleet-b", 2),
    ]
    assert [(x["runbook"], x["outcome"], x["rounds"]) for x in body["runbooks"]] == [
        ("fleet-a", "limit", 2),
        ("fleet-b", "limit", 2),
    ]
    assert body["exit_code"] == 0

    breaches = write_runbook(rb_dir, "fleet-c", monitor="1")  # breaches at once: rolled back, exit 4
    started(migrate, breaches)
    r = migrate(
        "-o", "json", "-f", str(a), "-f", str(breaches), "watch", "--interval", "0.2s", "--max-samples", "3"
    )
    assert r.code == 4, r.text
    body = json.loads(r.out.splitlines()[-1])  # the result, after a line per round
    outcomes = {x["runbook"]: (x["outcome"], x["exit_code"]) for x in body["runbooks"]}
    assert outcomes == {"fleet-a": ("limit", 0), "fleet-c": ("rolled-back", 4)}


def test_a_folder_a_dead_database_and_a_hanging_check_never_stall_the_good_one(
    rb_dir: Path, migrate: Migrate, pg_url: str
) -> None:
    fleet = rb_dir / "runbooks"
    fleet.mkdir()
    good, hangs = write_runbook(fleet, "good"), write_runbook(fleet, "hangs", hangs=True)
    write_runbook(fleet, "dead", url="postgresql://nobody@127.0.0.1:1/none")
    (fleet / "notes.txt").write_text("not a runbook: ignored\n")
    started(migrate, good, hangs)
    cmd = [sys.executable, "-m", "runbook", "-f", str(fleet), "watch", "--interval", "0.3s"]
    proc = subprocess.Popen(
        cmd, cwd=rb_dir, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    time.sleep(6)
    with psycopg.connect(pg_url) as conn:
        held = {r[0] for r in conn.execute("SELECT runbook FROM runbook.leases WHERE expires_at > now()")}
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 4, out + err  # the worst: the hanging app was rolled back (5 errors in a row)
    assert "good" in held  # (hangs gave its lease up when it rolled back)
    good_rounds = [ln for ln in err.splitlines() if ln.startswith("good: #")]
    assert len(good_rounds) >= 8, err  # 0.3 s apart over ~5 s of watching: the others never held it up
    hang_rounds = [ln for ln in err.splitlines() if ln.startswith("hangs: #")]
    assert len(hang_rounds) == 5 and "breach: rolled back to legacy" in hang_rounds[-1], err  # 1 s each
    assert any(ln.startswith("dead: ") and "state database" in ln for ln in err.splitlines()), err
    assert "hangs: Rolled back after 5 rounds" in out, out
    for name in ("good", "dead"):
        assert f"{name}: Watch stopped after" in out, out
    with psycopg.connect(pg_url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM runbook.leases WHERE runbook IN ('good', 'hangs', 'dead')"
        ).fetchone()
    assert left == (0,)  # SIGTERM: every thread released its lease


def test_bad_fleets_exit_2_naming_the_fix(rb_dir: Path, migrate: Migrate) -> None:
    empty = rb_dir / "empty"
    empty.mkdir()
    r = migrate("-f", str(empty), "watch", "--max-samples", "1")
    assert r.code == 2 and "the folder holds no runbook file (*.yaml, *.yml)" in r.err, r.text
    a = write_runbook(rb_dir, "same")
    twin = rb_dir / "twin.yaml"
    twin.write_text(a.read_text())
    r = migrate("-f", str(a), "-f", str(twin), "watch", "--max-samples", "1")
    assert r.code == 2 and "are both runbook 'same'" in r.err and "its own `name:`" in r.err, r.text
    r = migrate("-f", str(a), "-f", str(twin), "status")
    assert r.code == 2 and "only watch takes several" in r.err and "give one -f" in r.err, r.text
