"""A session: one loaded runbook with its state store, flag backend and check context, opened lazily so
that commands touch only what they need (`validate` nothing, `plan` no flags, `rollback` no checks)."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbook.model import Runbook

if TYPE_CHECKING:
    from runbook.actor import Actor
    from runbook.checkrun import CheckRunContext
    from runbook.flags.base import FlagBackend
    from runbook.measurement import Sample
    from runbook.state import StateStore


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Session:
    runbook: Runbook
    env: Mapping[str, str]
    actor: Actor
    progress: Callable[[str], None] = lambda _msg: None
    meter: Callable[[str | None], bool] = lambda _line: False
    """A progress bar redrawn in place (runbook.output.Output.meter); False where none is drawn."""
    confirm: Callable[[str], bool] = lambda _q: False
    clock: Callable[[], dt.datetime] = _utcnow
    _store: StateStore | None = field(default=None, repr=False)
    _backend: FlagBackend | None = field(default=None, repr=False)
    _contexts: list[CheckRunContext] = field(default_factory=list, repr=False)
    keep_check_connections: bool = True
    """Keep the checks' connections from one round to the next (one per URL); a fleet of runbooks in one
    process opens them each round instead (two kept per runbook would exceed max_connections)."""
    _check_connections: Any = field(default=None, repr=False)
    _notifier: Any = field(default=None, repr=False)
    _secrets: list[str] | None = field(default=None, repr=False)
    notice: Any = None
    """After `close`: notifications it could not deliver and kept in the outbox (a `KeptNotice`), or None."""

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        env: Mapping[str, str],
        progress: Callable[[str], None] = lambda _m: None,
        confirm: Callable[[str], bool] = lambda _q: False,
    ) -> Session:
        """Load the runbook strictly (no side effect before it is valid)."""
        from runbook.actor import current_actor
        from runbook.shipped_vars import unread_variables
        from runbook.spec import load_runbook

        rb = load_runbook(path, env=env)
        for warning in unread_variables(rb, env):
            progress(warning)
        return cls(runbook=rb, env=env, actor=current_actor(env), progress=progress, confirm=confirm)

    @property
    def name(self) -> str:
        return self.runbook.name

    def store(self) -> StateStore:
        """The state store, migrated, with any local journal synced into it."""
        if self._store is None:
            from runbook.redact import Redactor
            from runbook.session_journal import sync
            from runbook.state import StateStore

            store = StateStore.from_runbook(self.runbook, redact=Redactor(self.secrets()))
            self._store = store
            sync(self, store)
        return self._store

    def secrets(self) -> list[str]:
        """Values that must never be printed (runbook.secrets): header values, webhook URLs, the passwords and
        query values of every URL, the values of secret-looking variables the runbook file references."""
        if self._secrets is None:
            from runbook.secrets import env_secrets, runbook_secrets

            try:
                text = Path(self.runbook.source).read_text(errors="replace")
            except OSError:
                text = ""
            self._secrets = runbook_secrets(self.runbook, env_secrets(text, self.env))
        return self._secrets

    def redactor(self) -> Any:
        """A `runbook.redact.Redactor` of this runbook's secrets (journal lines, messages)."""
        from runbook.redact import Redactor

        return Redactor(self.secrets())

    def has_store(self) -> bool:
        """Whether the state store is already connected (no connect attempt)."""
        return self._store is not None

    def reset_store(self) -> None:
        """Forget a broken state connection; the next `store()` reconnects."""
        if self._store is not None:
            with contextlib.suppress(Exception):  # already broken
                self._store.close()
            self._store = None

    def notify(self, event_type: str, payload: Mapping[str, Any]) -> None:
        """Send a notification to the runbook's webhooks in the background (never blocks, never raises)."""
        if not self.runbook.settings.notifications:
            return
        self._open_notifier().notify(event_type, payload)

    def _open_notifier(self) -> Any:
        """The notifier, created on first use; it queues the outbox's undelivered notifications first."""
        if self._notifier is None:
            from runbook.notify import Notifier
            from runbook.outbox import Outbox, outbox_path
            from runbook.redact import Redactor

            self._notifier = Notifier(
                self.runbook.settings.notifications,
                Redactor(self.secrets()),
                runbook=self.name,
                outbox=Outbox(outbox_path(self.journal_path())),
            )
        return self._notifier

    def _close_notifier(self) -> None:
        """Deliver (a bounded wait, with retries) what this session and earlier commands left undelivered."""
        if self._notifier is None and self.runbook.settings.notifications:
            from runbook.outbox import outbox_path

            if outbox_path(self.journal_path()).exists():
                self._open_notifier()
        if self._notifier is not None:
            from runbook.notify import CLOSE_WAIT

            notifier, self._notifier = self._notifier, None
            notifier.close(timeout=CLOSE_WAIT)
            self.notice = notifier.notice()

    def journal_path(self) -> Path:
        """The local journal, beside the runbook file (settings.state.journal)."""
        from runbook.session_journal import journal_path

        return journal_path(self)

    def backend(self) -> FlagBackend:
        if self._backend is None:
            from runbook.flags.backends import make_backend

            self._backend = make_backend(self.runbook, self.env, state_connection=self._state_connection)
        return self._backend

    def _state_connection(self) -> Any:
        """The state store's connection when it is open (the postgres flag backend reads on it), else None."""
        return self._store.conn if self._store is not None else None

    def check_context(self, stage_id: str | None, entered_at: dt.datetime | None) -> CheckRunContext:
        from runbook.checkrun import CheckRunContext

        def samples(check: str) -> Sequence[Sample]:
            if stage_id is None or self._store is None:
                return ()
            return self._store_samples(stage_id, check, entered_at)

        if self._check_connections is None and self.keep_check_connections:
            from runbook.checkconns import CheckConnections

            self._check_connections = CheckConnections()
        ctx = CheckRunContext(
            runbook=self.runbook,
            stage_id=stage_id,
            stage_entered_at=entered_at,
            env=self.env,
            samples=samples,
            connections=self._check_connections,
        )
        self._contexts.append(ctx)
        return ctx

    def release_context(self, ctx: CheckRunContext) -> None:
        """End a round's check context now rather than at `close()` (a watcher measures for days); its
        connections stay with the session for the next round."""
        ctx.close()
        with contextlib.suppress(ValueError):
            self._contexts.remove(ctx)

    def _store_samples(self, stage_id: str, check: str, since: dt.datetime | None) -> Sequence[Sample]:
        assert self._store is not None
        return [r.as_sample() for r in self._store.samples(self.name, stage_id, check, since=since)]

    def close(self) -> None:
        """Close the connections, then wait (bounded) for the notifications; idempotent."""
        try:
            self._close_connections()
        finally:
            self._close_notifier()

    def _close_connections(self) -> None:
        for ctx in self._contexts:
            ctx.close()
        self._contexts.clear()
        if self._check_connections is not None:
            self._check_connections.close()
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
