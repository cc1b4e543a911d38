"""Bad input through the CLI, property-based: mutated and random runbook files, and random options to every
command. Zero tracebacks, every runbook error located (FILE:LINE:COL), exit codes only 0-5."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import string
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from runbook.cli import main
from tests.reliability.conftest import record, runbook_yaml

SHIPPED = (Path(__file__).resolve().parents[2] / "runbook" / "data" / "stages.yaml").read_text()
LINES = SHIPPED.splitlines(keepends=True)
LOCATED = re.compile(r"^.+:\d+:\d+: \S")
CODES = {0, 1, 2, 3, 4, 5}
UNREACHABLE = "postgresql://fuzz:fuzz-secret@127.0.0.1:1/nowhere"
STATS: dict[str, Counter[str]] = {"file": Counter(), "args": Counter()}

SCALARS = st.sampled_from(
    ["", "-1", "ten", "1e999", "nan", "[", "]", "{", "{a: 1}", "!!binary x", "${NOPE}", "${X:-}", "null",
     "true", "0.5s", "100MB", "-5m", "*a", "&a x", "'", '"', "|", ">", "[1, [2]]", "~", "0x1F", "2d 3h"]
) | st.text(max_size=12)  # fmt: skip
KEYS = st.sampled_from(
    ["version", "name", "settings", "flags", "stages", "id", "set", "verify", "monitor", "preflight", "kind",
     "query", "expect", "soak", "limits", "url", "type", "rollback_to", "manual", "approval", "<<"]
) | st.text(string.ascii_lowercase + "_", min_size=1, max_size=10)  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """The shipped runbook with a few line-level mutations."""
    lines = list(LINES)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "dup", "swap", "value", "indent", "insert", "cut", "chars"]))
        line = lines[i]
        if op == "delete":
            del lines[i]
        elif op == "dup":
            lines.insert(i, line)
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "value" and ":" in line:
            head = line.split(":", 1)[0]
            lines[i] = f"{head}: {draw(SCALARS)}\n"
        elif op == "indent":
            lines[i] = (
                (" " * draw(st.sampled_from([1, 2, 4]))) + line if draw(st.booleans()) else line.lstrip()
            )
        elif op == "insert":
            indent = len(line) - len(line.lstrip())
            lines.insert(i, " " * indent + f"{draw(KEYS)}: {draw(SCALARS)}\n")
        elif op == "cut":
            lines = lines[:i]
        else:
            at = draw(st.integers(0, len(line)))
            lines[i] = (
                line[:at] + draw(st.sampled_from([":", "- ", "\t", "{", "[", "#", "'", "${"])) + line[at:]
            )
        if not lines:
            break
    return "".join(lines)


LEAVES = st.none() | st.booleans() | st.integers() | st.floats() | SCALARS
TREES = st.recursive(
    LEAVES, lambda c: st.lists(c, max_size=4) | st.dictionaries(KEYS, c, max_size=5), max_leaves=25
)


@st.composite
def random_runbook(draw: st.DrawFn) -> str:
    """Random YAML: often a mapping with the top-level keys of a runbook, so the loader goes deep."""
    doc: Any = draw(TREES)
    if draw(st.booleans()):
        doc = {
            "version": draw(st.sampled_from([1, 2, "1", None])),
            "name": draw(SCALARS),
            "flags": draw(st.dictionaries(st.sampled_from(["A", "B", "a-b"]), LEAVES, max_size=3)),
            "stages": draw(st.lists(st.dictionaries(KEYS, TREES, max_size=4), max_size=4)),
            **(doc if isinstance(doc, dict) else {}),
        }
    return yaml.safe_dump(doc, allow_unicode=True) if draw(st.booleans()) else yaml.safe_dump(doc)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="rb-fuzz-") as d:
        yield Path(d)


def invoke(args: list[str], cwd: Path, env: dict[str, str | None]) -> tuple[int, str, str]:
    """Run the CLI in-process; any exception other than SystemExit fails the test (it is a traceback)."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    runner = CliRunner()
    try:
        with contextlib.chdir(cwd):
            res = runner.invoke(main, args, env={"RUNBOOK_TIME_SCALE": None, "NO_COLOR": "1", **env})
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        import traceback

        trace = "".join(traceback.format_exception(res.exception))
        pytest.fail(f"traceback for {args!r}:\n{trace}")
    out, err = res.stdout, res.stderr
    assert "Traceback" not in out + err, (args, out, err)
    assert res.exit_code in CODES, (args, res.exit_code, out, err)
    return res.exit_code, out, err


VARIABLES = sorted(set(re.findall(r"\$\{([A-Z_0-9]+)", SHIPPED)) - {"DATABASE_URL"})


def check_file(text: str, fmt: str, cmd: str, workdir: Path, variables: dict[str, str] | None = None) -> None:
    path = workdir / "fuzzed.yaml"
    path.write_text(text, encoding="utf-8")
    env: dict[str, str | None] = {
        "DATABASE_URL": UNREACHABLE,
        **dict.fromkeys(VARIABLES),
        **(variables or {}),
    }
    code, out, err = invoke(["-o", fmt, "-f", str(path), cmd], workdir, env)
    STATS["file"][f"exit {code}"] += 1
    if code != 2:
        assert code in ({0} if cmd == "validate" else {5}), (code, out, err)
        return
    if fmt == "json":
        error = json.loads(out)["error"]
        kind, lines, whole = (
            error["type"],
            error["message"].splitlines(),
            f"{error['message']} {error['hint']}",
        )
    else:
        assert err.startswith("error: "), err
        lines, whole = err[len("error: ") :].splitlines()[:1], err
        kind = "SpecError" if lines and LOCATED.match(lines[0]) else "ConfigError"
    STATS["file"][kind] += 1
    if (
        kind == "ConfigError"
    ):  # a value of the file that is only judged when used (a URL): named by its setting
        assert "settings." in whole, whole
        return
    assert kind == "SpecError", (kind, whole)
    assert lines and all(LOCATED.match(line) for line in lines), (kind, lines)
    assert all(line.startswith(str(path)) for line in lines), lines


FMT = st.sampled_from(["text", "json"])
CMD = st.sampled_from(["validate", "validate", "plan"])
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(
    text=mutated(),
    fmt=FMT,
    cmd=CMD,
    variables=st.dictionaries(
        st.sampled_from(VARIABLES), SCALARS.filter(lambda v: "\x00" not in v), max_size=3
    ),
)
def test_mutations_of_the_shipped_runbook(
    text: str, fmt: str, cmd: str, variables: dict[str, str], workdir: Path
) -> None:
    """The shipped runbook mutated, its ${VARIABLES} set to odd values (an environment has no NUL)."""
    check_file(text, fmt, cmd, workdir, variables)


@FUZZ
@given(text=random_runbook() | st.text(max_size=300), fmt=FMT, cmd=CMD)
def test_random_yaml_runbooks(text: str, fmt: str, cmd: str, workdir: Path) -> None:
    check_file(text, fmt, cmd, workdir)


# --- command arguments ----------------------------------------------------------------------------------

# (no NUL bytes: a real command line cannot carry them)
JUNK = st.sampled_from(
    ["", "-", "--", "-x", "--nope", "x" * 300, "é", "../x", "a b", "1e309", "-1", "0", "nan"]
)
PATHS = st.sampled_from(
    ["out/x.xml", "x.md", "", ".", "dir/", "y" * 300, "ü.html", "a\nb", "app.env/x"]
) | st.text(string.ascii_letters + "._-", max_size=10)
VALUES = st.sampled_from(["legacy", "one", "two", "nope", "", "1h", "0s", "-1s", "ten", "1e999"]) | JUNK
OPTIONS: dict[str, list[tuple[str, st.SearchStrategy[str] | None]]] = {
    "validate": [],
    "schema": [],
    "init": [("--dir", PATHS), ("--ci", VALUES | st.sampled_from(["github", "gitlab"])), ("--force", None)],
    "plan": [("--check", None)],
    "advance": [
        ("--dry-run", None),
        ("--yes", None),
        ("--force", None),
        ("--reason", VALUES),
        ("--confirm", VALUES),
    ],
    "rollback": [("--to", VALUES), ("--reason", VALUES), ("--force", None), ("--yes", None)],
    "status": [],
    "history": [("-n", VALUES | st.integers(-5, 10**12).map(str)), ("--operation", VALUES)],
    "unlock": [("--reason", VALUES)],
    "gate": [("--rollback-on-failure", None), ("--junit", PATHS), ("--summary", PATHS)],
    "watch": [("--interval", VALUES), ("--auto-advance", None), ("--wait", None), ("--max-samples", VALUES)],
    "report": [("--out", PATHS)],
    "calibrate": [("--window", VALUES), ("--write", None), ("--yes", None)],
}
GLOBAL: list[tuple[str, st.SearchStrategy[str] | None]] = [
    ("-o", st.sampled_from(["text", "json", "markdown", "yaml", ""])),
    ("--time-scale", st.sampled_from(["0.5", "1", "0", "-1", "2", "nan", "inf", "x", "1e-300"])),
    ("--no-color", None),
    ("-f", st.sampled_from(["stages.yaml", "nope.yaml", ".", "", "z" * 300, "app.env"])),
]


@st.composite
def options(draw: st.DrawFn, pool: list[tuple[str, st.SearchStrategy[str] | None]]) -> list[str]:
    out: list[str] = []
    for name, values in draw(st.lists(st.sampled_from(pool), max_size=4)) if pool else []:
        out.append(name)
        if values is not None and draw(st.integers(0, 9)) > 0:
            out.append(draw(values))
    if draw(st.integers(0, 5)) == 0:
        out.insert(draw(st.integers(0, len(out))), draw(JUNK))
    return out


@st.composite
def command_line(draw: st.DrawFn) -> list[str]:
    cmd = draw(st.sampled_from([*OPTIONS, "nope", ""]))
    args = [*draw(options(GLOBAL)), cmd, *draw(options(OPTIONS.get(cmd, [])))]
    if cmd == "watch":
        args += ["--max-samples", "1"]  # the last one wins: a watch always ends
    return args


@pytest.fixture(scope="module")
def argdir(pg_server_url: str) -> Iterator[tuple[Path, str]]:
    """A folder with the suite's runbook and its own database (shared by every example)."""
    import uuid

    import psycopg
    from psycopg import sql

    from tests.conftest import with_dbname

    name = f"fz_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with tempfile.TemporaryDirectory(prefix="rb-args-") as d:
        yield Path(d), with_dbname(pg_server_url, name)
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(args=command_line())
@example(args=["-o", "text", "-f", "z" * 300, "watch", "--max-samples", "1"])  # ENAMETOOLONG (found by it)
@example(args=["-f", ".", "watch", "--wait", "--max-samples", "1"])  # a replica of a folder looped forever
def test_random_command_lines(args: list[str], argdir: tuple[Path, str]) -> None:
    folder, url = argdir
    rb = folder / "rb"
    rb.mkdir(exist_ok=True)
    (rb / "stages.yaml").write_text(runbook_yaml())
    if not (rb / "app.env").exists():
        (rb / "app.env").write_text("PGBOSS_ENABLED=false\n")
    env: dict[str, str | None] = {
        "DATABASE_URL": url,
        "STATE_URL": url,
        "RUNBOOK_FILE": str(rb / "stages.yaml"),
    }
    args = [a.replace("stages.yaml", str(rb / "stages.yaml")) if a == "stages.yaml" else a for a in args]
    if "-f" not in args:
        args = ["-f", str(rb / "stages.yaml"), *args]
    code, _, _ = invoke(args, rb, env)
    STATS["args"][f"exit {code}"] += 1
    STATS["args"]["runs"] += 1


def test_zz_report_counts() -> None:
    f, a = STATS["file"], STATS["args"]
    files = sum(v for k, v in f.items() if k.startswith("exit"))
    record(
        f"RELIABILITY fuzz: {files} runbook files ({f['SpecError']} runbook errors, all located "
        f"FILE:LINE:COL; "
        f"{f['ConfigError']} bad URLs, named by their setting) and "
        f"{a['runs']} random command lines: 0 tracebacks, exit codes "
        + ", ".join(f"{k.split()[1]}: {v}" for k, v in sorted((f + a).items()) if k.startswith("exit"))
    )
