"""The validated-runbook cache: hits only while the file, the environment it reads and the code are the same,
never writes a value read from the environment, and never fails a load."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from runbook.errors import SpecError
from runbook.spec import cache, load_runbook, load_runbook_text, pickling

REPO = Path(__file__).resolve().parents[2]
SECRET = "pw-Zq8v1xK4"
TEXT = """\
version: 1
name: cached
settings:
  database: {url: '${DB_URL}'}
  app: {url: 'http://127.0.0.1:1', headers: {Authorization: 'Bearer ${TOKEN}'}}
flags: {F: false}
stages:
  - id: a
  - id: b
    set: {F: true}
    soak: ${SOAK:-2h}
    monitor:
      - name: health
        kind: http
        url: /health?key=${TOKEN}
"""


Setup = tuple[Path, Path, dict[str, str]]


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Setup:
    folder = tmp_path / "cache"
    monkeypatch.setenv(cache.SPEC_CACHE_ENV, str(folder))
    path = tmp_path / "stages.yaml"
    path.write_text(TEXT)
    env = {"DB_URL": f"postgresql://app:{SECRET}@db.internal:5432/app", "TOKEN": "tok-" + SECRET}
    return path, folder, env


def entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.pickle"))


def no_fresh_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any load that does not come from the cache fail loudly."""

    def boom(*_a: object, **_k: object) -> None:
        raise AssertionError("loaded from the file, not the cache")

    monkeypatch.setattr("runbook.spec.load_runbook_text", boom)


def test_a_second_load_comes_from_the_cache_and_equals_the_first(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, folder, env = setup
    first = load_runbook(path, env=env)
    assert len(entries(folder)) == 1
    no_fresh_load(monkeypatch)
    second = load_runbook(path, env=env)
    check = second.stages[1].monitor[0]
    assert "_load_params" in check.__dict__  # the kind's parameters are loaded on first use ...
    assert check.params.url == "/health?key=tok-" + SECRET  # ... with their values rebuilt
    assert "_load_params" not in check.__dict__
    assert second == first
    assert second.settings.database.url == env["DB_URL"]
    assert second.settings.app.headers == {"Authorization": "Bearer tok-" + SECRET}
    assert second.stages[1].soak.duration == 7200.0


def test_no_value_of_the_environment_is_written(setup: Setup) -> None:
    path, folder, env = setup
    load_runbook(path, env=env)
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert {p.name for p in files} == {"salt", entries(folder)[0].name}
    for p in files:
        data = p.read_bytes()
        assert SECRET.encode() not in data
        assert b"db.internal" not in data  # the whole value is kept out, not only its secret part
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in files)
    assert folder.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(
    ("change", "expect_soak"),
    [({"SOAK": "3h"}, 10800.0), ({"SOAK": ""}, 7200.0)],
)
def test_a_changed_variable_misses(setup: Setup, change: dict[str, str], expect_soak: float) -> None:
    path, folder, env = setup
    assert load_runbook(path, env=env).stages[1].soak.duration == 7200.0
    rb = load_runbook(path, env={**env, **change})  # SOAK was unset: setting it (even empty) is a change
    assert rb.stages[1].soak.duration == expect_soak
    assert len(entries(folder)) == 1  # same file: the entry is replaced
    other = load_runbook(path, env={**env, "DB_URL": "postgresql://other/db"})
    assert other.settings.database.url == "postgresql://other/db"


def test_unrelated_variables_do_not_miss(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _, env = setup
    load_runbook(path, env=env)
    no_fresh_load(monkeypatch)
    assert load_runbook(path, env={**env, "UNRELATED": "1"}).name == "cached"


def test_a_changed_file_path_or_time_scale_misses(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    path, folder, env = setup
    load_runbook(path, env=env)
    path.write_text(TEXT.replace("name: cached", "name: edited"))
    assert load_runbook(path, env=env).name == "edited"
    assert load_runbook(path, env=env, time_scale=0.5).stages[1].soak.duration == 3600.0
    monkeypatch.chdir(path.parent)
    rb = load_runbook("stages.yaml", env=env)  # the path as given appears in messages and locations
    assert rb.source == "stages.yaml" and rb.stages[0].location.startswith("stages.yaml:")
    assert len(entries(folder)) == 4


def test_invalid_runbooks_are_not_cached(setup: Setup) -> None:
    path, folder, env = setup
    path.write_text(TEXT.replace("kind: http", "kind: htp"))
    for _ in range(2):
        with pytest.raises(SpecError, match="htp"):
            load_runbook(path, env=env)
    assert entries(folder) == []


def test_off_writes_nothing(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    path, folder, env = setup
    monkeypatch.setenv(cache.SPEC_CACHE_ENV, "off")
    load_runbook(path, env=env)
    assert not folder.exists()


def test_a_corrupt_or_foreign_entry_is_a_miss(setup: Setup) -> None:
    path, folder, env = setup
    load_runbook(path, env=env)
    (entry,) = entries(folder)
    entry.write_bytes(b"not a pickle")
    assert load_runbook(path, env=env).name == "cached"
    entry.write_bytes(pickle.dumps((cache.FORMAT + 1, (), b"", b"")))
    assert load_runbook(path, env=env).name == "cached"
    (folder / "salt").unlink()  # entries keyed by a lost salt are misses, and are written again
    assert load_runbook(path, env=env).name == "cached"
    assert (folder / "salt").stat().st_size == 32


def test_an_unusable_folder_never_fails_a_load(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    path, folder, env = setup
    folder.parent.joinpath("a-file").write_text("")
    monkeypatch.setenv(cache.SPEC_CACHE_ENV, str(folder.parent / "a-file" / "cache"))
    assert load_runbook(path, env=env).name == "cached"
    assert load_runbook(path, env=env).name == "cached"


def test_an_entry_that_would_hold_a_value_is_not_written(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last guard: should a value get past the templating (simulated: no string templated), the bytes
    are searched for every value and nothing is written."""
    path, folder, env = setup
    monkeypatch.setattr(pickling._Pickler, "persistent_id", lambda self, obj: None)
    rb = load_runbook(path, env=env)
    assert rb.settings.database.url == env["DB_URL"]
    assert entries(folder) == []


def test_old_entries_are_pruned(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    path, folder, env = setup
    monkeypatch.setattr(cache, "MAX_ENTRIES", 3)
    for i in range(5):
        path.write_text(TEXT.replace("name: cached", f"name: n{i}"))
        load_runbook(path, env=env)
    assert len(entries(folder)) == 3


def test_same_result_as_an_uncached_load(setup: Setup) -> None:
    _, _, env = setup
    shipped = REPO / "stages.yaml"
    env = {**env, "DATABASE_URL": f"postgresql://u:{SECRET}@h/db", "APP_URL": "http://127.0.0.1:3000"}
    fresh = load_runbook_text(shipped.read_text(), str(shipped), env=env)
    load_runbook(shipped, env=env)
    assert load_runbook(shipped, env=env) == fresh


def test_a_hit_imports_no_yaml_and_no_check_kind(setup: Setup) -> None:
    """What the cache is for: a new process that loads a cached runbook skips the parser and the kinds."""
    path, folder, env = setup
    code = (
        "import sys\nfrom runbook.spec import load_runbook\n"
        f"rb = load_runbook({str(path)!r}, env={env!r})\n"
        "print(sorted(m for m in sys.modules if m == 'yaml' or m.startswith('runbook.checks')))\n"
    )
    run_env = {**os.environ, cache.SPEC_CACHE_ENV: str(folder)}
    cold, warm = (
        subprocess.run([sys.executable, "-c", code], env=run_env, capture_output=True, text=True, check=True)
        for _ in range(2)
    )
    assert "'yaml'" in cold.stdout and "runbook.checks.http" in cold.stdout
    assert warm.stdout.strip() == "[]"


def test_a_folder_others_may_write_is_not_used(setup: Setup) -> None:
    """Entries are pickles: one planted by another user could run code, so a shared folder is ignored."""
    path, folder, env = setup
    folder.mkdir(mode=0o700)
    folder.chmod(0o777)
    assert load_runbook(path, env=env).name == "cached"
    assert entries(folder) == []
    folder.chmod(0o700)
    load_runbook(path, env=env)
    (entry,) = entries(folder)
    folder.chmod(0o770)  # group-writable now: the entry there is not read
    assert cache.load(folder, entry.stem, env) is None
    folder.chmod(0o700)
    assert cache.load(folder, entry.stem, env) is not None
