"""A stage's `transfer:` as the loader reads it: the shipped runbook declares one on increment-4, off unless
TRANSFER_LEGACY_BACKLOG=true, and validates either way; `migrate validate` refuses a bad one with exit 2 at
its line (the bad corpus, tests/data/runbooks/bad/7x-stage-transfer-*, holds the exact messages). The
`--filter` text rules (runbook.transfer.rowfilter) without a database."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from runbook.cli import main
from runbook.errors import UsageError
from runbook.exitcodes import ExitCode
from runbook.model import StageTransfer, TransferSettings
from runbook.spec import load_runbook
from runbook.transfer.action import ActionResult
from runbook.transfer.mapping import types_for
from runbook.transfer.rowfilter import check_text

ROOT = Path(__file__).resolve().parents[2]
BAD = ROOT / "tests" / "data" / "runbooks" / "bad"


@pytest.mark.parametrize(("value", "enabled"), [(None, False), ("true", True), ("false", False)])
def test_the_shipped_runbook_declares_the_increment_4_transfer(value: str | None, enabled: bool) -> None:
    env = {"TRANSFER_LEGACY_BACKLOG": value} if value is not None else {}
    rb = load_runbook(ROOT / "stages.yaml", env=env)
    st = rb.stage("increment-4").transfer
    assert st is not None and st.location.startswith(str(ROOT / "stages.yaml"))
    assert (st.queue, st.batch, st.enabled, st.type, st.filter, st.workers) == (
        "evaluation",
        250,
        enabled,
        None,
        None,
        1,
    )
    assert [s.id for s in rb.stages if s.transfer is not None] == ["increment-4"]
    assert rb.settings.transfer.legacy_id_key == "legacyJobId"


def test_validate_accepts_the_shipped_transfer_when_on() -> None:
    res = CliRunner().invoke(
        main, ["-f", str(ROOT / "stages.yaml"), "validate"], env={"TRANSFER_LEGACY_BACKLOG": "true"}
    )
    assert res.exit_code == ExitCode.OK, res.output
    assert "increment-4: Full cut-over  [PGBOSS_FOR_ALL_JOBS=true]  + transfer -> evaluation\n" in res.stdout


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("70-stage-transfer-unknown-key", 'stages[1].transfer: unknown key "queu"; did you mean "queue"?'),
        ("71-stage-transfer-batch", "stages[1].transfer.batch: must be at least 1, got 0"),
        ("72-stage-transfer-without-settings", "stages[1].transfer: needs settings.transfer"),
        (
            "73-stage-transfer-workers",
            ":10:44: stages[0].transfer.workers: must be 1 to 16 (as --workers), got 0",
        ),
        (
            "73-stage-transfer-workers",
            ":12:44: stages[1].transfer.workers: must be 1 to 16 (as --workers), got -1",
        ),
        ("73-stage-transfer-workers", ':14:44: stages[2].transfer.workers: expected an integer, got "two"'),
    ],
)
def test_validate_refuses_a_bad_stage_transfer_with_exit_2_at_its_line(name: str, message: str) -> None:
    res = CliRunner().invoke(main, ["-f", str(BAD / f"{name}.yaml"), "validate"])
    assert res.exit_code == ExitCode.USAGE, res.output
    assert f"{name}.yaml:" in res.stderr and message in res.stderr


def test_a_stage_transfer_defaults() -> None:
    assert StageTransfer(queue="q") == StageTransfer("q", None, None, 250, True, 1, "")


def test_a_stage_transfer_takes_workers(tmp_path: Path) -> None:
    text = (BAD / "73-stage-transfer-workers.yaml").read_text()
    good = tmp_path / "workers.yaml"
    good.write_text(text.split("  - id: increment-2")[0].replace("workers: 0", "workers: 2"))
    st = load_runbook(good).stage("increment-1").transfer
    assert st is not None and (st.queue, st.workers) == ("evaluation", 2)
    res = CliRunner().invoke(main, ["-f", str(good), "validate"])
    assert res.exit_code == ExitCode.OK, res.output


@pytest.mark.parametrize(
    "text",
    [
        "\"evaluationId\" = 'a;b'",
        "\"evaluationId\" = 'it''s -- fine'",
        "\"evaluationId\" = E'back\\'slash;'",
        '"evaluationId" = $x$ ) /* $x$',
        '"odd;name" IS NOT NULL',
        "(a OR b) AND (c)",
        "price$1 > 0",
    ],
)
def test_filter_text_allows_anything_inside_quotes(text: str) -> None:
    assert check_text(f"  {text} ", "--filter") == text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a; b", "holds a `;`"),
        ("a -- b", "holds a comment"),
        ("a /* b */", "holds a comment"),
        ("a) OR (b", "closes a parenthesis it did not open"),
        ("((a)", "leaves a parenthesis open"),
        ("'a", "has an unterminated quote"),
        ('"a', "has an unterminated quote"),
        ("$q$ a", "has an unterminated dollar quote"),
        ("E'a\\'", "has an unterminated quote"),
        ("", "is empty"),
    ],
)
def test_filter_text_refuses_what_could_escape_its_place(text: str, problem: str) -> None:
    with pytest.raises(UsageError) as err:
        check_text(text, "--filter")
    assert err.value.message.startswith(f"--filter {problem}")
    assert err.value.exit_code == ExitCode.USAGE


def test_the_rerun_of_a_failed_stage_transfer_keeps_its_workers() -> None:
    rerun = "migrate transfer legacy --queue q --batch 10"
    assert ActionResult(StageTransfer("q", batch=10, workers=2)).rerun() == rerun + " --workers 2"
    assert ActionResult(StageTransfer("q", batch=10)).rerun() == rerun


ROUTED = TransferSettings(queues={"send-email": "email", "resize-image": "images"})


@pytest.mark.parametrize(
    ("settings", "queue", "type_value", "expected"),
    [
        (ROUTED, "email", None, ("send-email",)),
        (ROUTED, "email", "send-email", ("send-email",)),
        (
            ROUTED,
            "email",
            "cleanup",
            "does not send type 'cleanup' to any queue (it maps resize-image, send-email)",
        ),
        (ROUTED, "email", "resize-image", "sends type 'resize-image' to queue 'images', not 'email'"),
        (ROUTED, "nope", None, "no legacy type maps to queue 'nope'"),
        (TransferSettings(), "email", None, "settings.transfer.queues is not set"),
        (TransferSettings(), "email", "cleanup", ("cleanup",)),
    ],
)
def test_which_types_a_transfer_moves(
    settings: TransferSettings, queue: str, type_value: str | None, expected: tuple[str, ...] | str
) -> None:
    """With a type column: the types settings.transfer.queues sends to the queue, or the one --type names if
    the mapping sends it there (a type it does not map was moved anyway); without a mapping, --type only."""
    if isinstance(expected, tuple):
        assert types_for(settings, "kind", queue, type_value) == expected
        return
    with pytest.raises(UsageError) as err:
        types_for(settings, "kind", queue, type_value)
    assert expected in err.value.message and err.value.hint
