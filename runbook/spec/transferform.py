"""A stage's `transfer:` (runbook.model.StageTransfer), checked where it is written: a queue, a batch of at
least 1, workers as --workers allows them, and settings.transfer present with a legacy_id_key (the action's
verify counts the moved jobs by it), the queue and type agreeing with settings.transfer.queues as
`migrate transfer legacy` would require."""

from __future__ import annotations

from typing import Any

from yaml.nodes import MappingNode, Node

from runbook.errors import UsageError
from runbook.model import TRANSFER_WORKERS_MAX, StageTransfer, TransferSettings
from runbook.spec.convert import Converter
from runbook.spec.leaves import INVALID
from runbook.spec.typehints import close_match
from runbook.spec.yamlnodes import join


class TransferForm:
    """The converter's handler of StageTransfer, knowing the settings it runs with."""

    def __init__(self, settings: TransferSettings | None, type_column: str | None) -> None:
        self.settings = settings
        """settings.transfer when the file writes it (None: a stage's `transfer:` has no mapping)."""
        self.type_column = type_column

    def __call__(self, conv: Converter, node: Node, path: str) -> Any:
        st = conv.dataclass(node, StageTransfer, path)
        if st is INVALID:
            return INVALID
        problems = self.problems(st)
        at = (
            {k.value: (v, join(path, k.value)) for k, v in node.value}
            if isinstance(node, MappingNode)
            else {}
        )
        for key, message in problems:
            where, sub = at.get(key, (node, path))
            conv.issues.add(where, sub, message)
        return INVALID if problems else st

    def problems(self, st: StageTransfer) -> list[tuple[str, str]]:
        """(key, message) of each problem; key "" is the `transfer:` mapping itself."""
        ts = self.settings
        found: list[tuple[str, str]] = []
        if not st.queue:
            found.append(("queue", "needs the target pg-boss queue, e.g. queue: evaluation"))
        if st.batch < 1:
            found.append(("batch", f"must be at least 1, got {st.batch}"))
        if not 1 <= st.workers <= TRANSFER_WORKERS_MAX:
            found.append(("workers", f"must be 1 to {TRANSFER_WORKERS_MAX} (as --workers), got {st.workers}"))
        if ts is None:
            found.append(("", "needs settings.transfer (how a legacy row becomes a job); add it"))
        elif not ts.legacy_id_key:
            found.append(
                ("", "needs settings.transfer.legacy_id_key (its verify counts the moved jobs by that key)")
            )
        elif st.queue:
            from runbook.transfer.mapping import types_for  # only a runbook with a transfer pays the import

            try:
                types_for(ts, self.type_column, st.queue, st.type)
            except UsageError as exc:
                queues = sorted(set(ts.queues.values()))
                found.append(("type" if st.type else "queue", f"{exc.message}; {_fix(ts, st, queues)}"))
        return found


def _fix(ts: TransferSettings, st: StageTransfer, queues: list[str]) -> str:
    """What to write instead, in the stage's own terms: the queue a typo meant, the queue the type goes to."""
    close = close_match(st.queue, set(queues)) if queues and st.queue not in queues else None
    if close:
        return f'did you mean "{close}"?'
    if st.type and st.type in ts.queues:
        return f"write queue: {ts.queues[st.type]}, or change settings.transfer.queues"
    if st.type and ts.queues:
        return f"add {st.type}: {st.queue} to settings.transfer.queues"
    if not ts.queues:
        return f"add settings.transfer.queues: {{TYPE: {st.queue}}}, or write type: TYPE"
    return "it maps to: " + (", ".join(queues) or "none")
