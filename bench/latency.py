"""Command latency on a warm database: `migrate --help`, `migrate status` and `migrate plan` (the shipped
stages.yaml, postgres flag backend, state initialised) against a floor (a bare Python process that imports
psycopg, connects and runs SELECT 1) and against `alembic current` on the same database.

Every round runs each command once, in a shuffled order, so all of them see the same machine load; the
figures are medians over the rounds and ratios of those medians. Run: `.venv/bin/python -m bench.latency`
(`--rounds N`, default 21). Installs alembic into the venv on first use."""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.common import REPO, VENV_BIN, fresh_database, met, print_table, server, summary, write_results

FLOOR = "import os, psycopg\nwith psycopg.connect(os.environ['DATABASE_URL']) as c: c.execute('SELECT 1')"
STATUS_TARGET = 1.5
"""`migrate status` within 1.5x the floor."""


def initialise(workdir: Path, env: Mapping[str, str]) -> None:
    """Record the first stage and write its flags through the postgres backend (what `status` reads)."""
    from runbook import engine
    from runbook.session import Session

    with Session.open(workdir / "stages.yaml", env=env) as session:
        cur = engine.ensure_recorded(session)
        flipped = engine.flip(session, cur.flags)
        if flipped.error is not None:
            raise SystemExit(f"could not write the flags: {flipped.error.message}")


def prepare(workdir: Path, url: str) -> dict[str, str]:
    """Copy the shipped stages.yaml into `workdir`, record its first stage over `url` (flags in the postgres
    backend, state in the same database) and return the environment the benchmark's commands run in."""
    env = {**os.environ, "DATABASE_URL": url, "RUNBOOK_FLAG_BACKEND": "postgres", "NO_COLOR": "1"}
    env.pop("RUNBOOK_STATE_URL", None)
    # An installed package has its .pyc files (pip compiles them; an editable install writes them on first
    # import). Measure that, not a recompile of every module on every run.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    shutil.copy(REPO / "stages.yaml", workdir / "stages.yaml")
    initialise(workdir, env)
    return env


def ensure_alembic() -> None:
    """Install alembic into the venv unless it is there (the benchmark's only extra dependency)."""
    probe = subprocess.run([str(VENV_BIN / "python"), "-c", "import alembic, psycopg"], capture_output=True)
    if probe.returncode != 0:
        print("installing alembic into .venv for the comparison ...")
        subprocess.run([str(VENV_BIN / "python"), "-m", "pip", "install", "-q", "alembic"], check=True)


def sqlalchemy_url(url: str) -> str:
    """The libpq URL as SQLAlchemy wants it for psycopg 3 (`postgresql+psycopg://...`)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(scheme="postgresql+psycopg"))


def alembic_env(folder: Path, url: str) -> Path:
    """A minimal alembic project with one applied revision; return its alembic.ini."""
    alembic = str(VENV_BIN / "alembic")
    subprocess.run(
        [alembic, "init", "-t", "generic", str(folder / "migrations")],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    ini = folder / "alembic.ini"
    text = ini.read_text().replace(
        "sqlalchemy.url = driver://user:pass@localhost/dbname",
        "sqlalchemy.url = " + sqlalchemy_url(url).replace("%", "%%"),
    )
    ini.write_text(text)
    subprocess.run(
        [alembic, "-c", str(ini), "revision", "-m", "first"], cwd=folder, check=True, capture_output=True
    )
    subprocess.run([alembic, "-c", str(ini), "upgrade", "head"], cwd=folder, check=True, capture_output=True)
    return ini


def commands(ini: Path) -> dict[str, list[str]]:
    migrate, python = str(VENV_BIN / "migrate"), str(VENV_BIN / "python")
    return {
        "floor (python: import psycopg, connect, SELECT 1)": [python, "-c", FLOOR],
        "migrate --help": [migrate, "--help"],
        "migrate status": [migrate, "status"],
        "migrate plan": [migrate, "plan"],
        "alembic current": [str(VENV_BIN / "alembic"), "-c", str(ini), "current"],
    }


def run_once(argv: list[str], cwd: Path, env: Mapping[str, str]) -> tuple[float, float]:
    """Run one command to completion; return its wall time and its CPU time (user + system), in seconds.
    A failure aborts the benchmark."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=dict(env), capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def measure(rounds: int, url: str, workdir: Path) -> dict[str, Any]:
    env = prepare(workdir, url)
    ini = alembic_env(workdir, url)
    cmds = commands(ini)
    wall: dict[str, list[float]] = {name: [] for name in cmds}
    cpu: dict[str, list[float]] = {name: [] for name in cmds}
    for argv in cmds.values():  # warm-up: page cache, .pyc files, template cache, server catalog cache
        run_once(argv, workdir, env)
    order = list(cmds)
    rng = random.Random(7)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            w, c = run_once(cmds[name], workdir, env)
            wall[name].append(w)
            cpu[name].append(c)
    return {
        name: {**summary(wall[name]), "cpu_median_ms": round(statistics.median(cpu[name]) * 1000, 2)}
        for name in cmds
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args(argv)
    ensure_alembic()
    with server() as srv, fresh_database(srv, "bench_latency") as url, tempfile.TemporaryDirectory() as tmp:
        stats = measure(args.rounds, url, Path(tmp))
    floor_name, alembic_name = next(iter(stats)), "alembic current"
    floor = stats[floor_name]["median_ms"]
    alembic = stats[alembic_name]["median_ms"]
    targets = {
        "migrate status": (
            f"<= {STATUS_TARGET}x floor and < alembic current",
            stats["migrate status"]["median_ms"] <= STATUS_TARGET * floor
            and stats["migrate status"]["median_ms"] < alembic,
        ),
    }
    rows = []
    for name, s in stats.items():
        ratio = s["median_ms"] / floor
        target, ok = targets.get(name, ("-", None))
        s["ratio_to_floor"] = round(ratio, 2)
        s["ratio_to_alembic"] = round(s["median_ms"] / alembic, 2)
        s["target"] = target
        s["met"] = ok
        s["cpu_ratio_to_floor"] = round(s["cpu_median_ms"] / stats[floor_name]["cpu_median_ms"], 2)
        rows.append(
            [
                name,
                f"{s['median_ms']:.0f} ms",
                f"{s['p90_ms']:.0f} ms",
                f"{ratio:.2f}x",
                f"{s['cpu_median_ms']:.0f} ms ({s['cpu_ratio_to_floor']:.2f}x)",
                f"{s['median_ms'] / alembic:.2f}x",
                target,
                "-" if ok is None else met(ok),
            ]
        )
    print(f"\n{args.rounds} rounds, commands interleaved in shuffled order; ratios of medians\n")
    print_table(
        ["command", "median", "p90", "vs floor", "CPU (vs floor)", "vs alembic", "target", "met?"], rows
    )
    write_results(
        "latency",
        {
            "rounds": args.rounds,
            "commands": stats,
            "floor_median_ms": floor,
            "status_target_ratio": STATUS_TARGET,
        },
    )
    return 0 if all(ok for _, ok in targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
