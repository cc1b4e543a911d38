"""Every operation the code records in an event is in runbook.operations.OPERATIONS, the list `history
--operation` offers (a new-user trial: `--operation bogus` said "No events yet" and exited 0)."""

from __future__ import annotations

import ast
from pathlib import Path

from runbook.operations import OPERATIONS
from runbook.state.journalread import JOURNAL_OPERATIONS
from runbook.state.records import TRANSITIONS

PACKAGE = Path(__file__).resolve().parents[2] / "runbook"


def _strings(node: ast.AST) -> set[str]:
    """The literal strings an expression evaluates to: "a", or "a" if ... else "b"."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _strings(node.body) | _strings(node.orelse)
    return set()


def recorded() -> dict[str, str]:
    """Operation names written in the code, each with where: the first argument of NewEvent(...), the second
    of event(session, ...), any `operation=...` keyword and any assignment to a name `operation`."""
    found: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: set[str] = set()
            if isinstance(node, ast.Call):
                func = node.func
                called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if called == "NewEvent" and node.args:
                    names |= _strings(node.args[0])
                if called == "event" and len(node.args) > 1:
                    names |= _strings(node.args[1])
                for kw in node.keywords:
                    if kw.arg == "operation":
                        names |= _strings(kw.value)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id == "operation" for t in targets) and node.value:
                    names |= _strings(node.value)
            for name in names - {""}:  # a default of "" is no operation
                found.setdefault(name, f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', 0)}")
    return found


def test_every_recorded_operation_is_offered_by_history() -> None:
    found = recorded()
    usual = {"advance", "rollback", "auto-rollback", "reconcile", "unlock", "transfer", "sample-breach"}
    assert usual <= set(found), found  # the scan sees the usual ways events are made
    missing = {name: where for name, where in found.items() if name not in OPERATIONS}
    assert missing == {}
    assert set(TRANSITIONS) | JOURNAL_OPERATIONS <= set(OPERATIONS)
    assert len(set(OPERATIONS)) == len(OPERATIONS)
