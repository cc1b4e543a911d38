"""How `migrate watch` shows itself: a live view on a terminal, one line per sample in a log; and clean
stops on SIGTERM and Ctrl-C (the current round finishes or is recorded)."""

from __future__ import annotations

import signal
import threading
from types import FrameType

from runbook.commands.watch import WatchView
from runbook.output import Output, _isatty


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT; the watcher checks it between rounds."""
    stop = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
    return stop


def announce_metrics(output: Output, url: str) -> None:
    """Say where the metrics are served, on stderr in every format (a JSON object in JSON: port 0 picks a port
    that scripts must learn)."""
    if output.fmt == "json":
        from runbook.rendering import to_json_text

        line = to_json_text(
            {"metrics_url": f"{url}/metrics", "healthz": f"{url}/healthz", "readyz": f"{url}/readyz"}
        )
        output.err.write(line.replace("\n", " ") + "\n")
    else:
        output.err.write(f"metrics: {url}/metrics (probes: /healthz, /readyz)\n")
    output.err.flush()


class WatchPrinter:
    """Renders each round: `watch_live` redrawn on a terminal, `watch_line` appended in a log (stderr);
    with -o json, a JSON object a line on stdout. With `runbook` (one of a fleet's, in its own thread) each
    line starts with the runbook's name (its JSON object has a `runbook` key) and there is no live view: the
    fleet's lines interleave, a whole line at a time."""

    lock = threading.Lock()
    """One line written at a time across the threads of a fleet."""

    def __init__(self, output: Output, runbook: str | None = None) -> None:
        self.output = output
        self.runbook = runbook
        self.live = output.fmt == "text" and _isatty(output.stream) and runbook is None
        self.history: list[str] = []

    def __call__(self, view: WatchView) -> None:
        with self.lock:
            self._print(view)

    def _print(self, view: WatchView) -> None:
        if self.output.fmt == "json":  # one object per round on stdout, before the result (a script reads it)
            body = view.to_json() if self.runbook is None else {"runbook": self.runbook, **view.to_json()}
            self.output.record(body)
            return
        env = self.output._env
        line = env.get_template("watch_line.txt.j2").render(v=view.to_json()).strip()
        if self.runbook is not None:
            line = f"{self.runbook}: {line}"
        self.history = [*self.history[-4:], line]
        if self.live:
            screen = env.get_template("watch_live.txt.j2").render(v=view.to_json(), recent=self.history)
            self.output.stream.write("\x1b[2J\x1b[H" + self.output.redact(screen))
        else:
            self.output.err.write(self.output.redact(line) + "\n")
        self.output.err.flush()
