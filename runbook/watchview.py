"""How `migrate watch` shows itself: a live view on a terminal, one line per sample in a log; and clean
stops on SIGTERM and Ctrl-C (the current round finishes and is recorded; a second one stops at once)."""

from __future__ import annotations

import signal
import threading
from types import FrameType

from runbook.commands.watch import WatchView
from runbook.output import Output, _isatty

STOPPING = "stopping after the current round… (Ctrl-C again to stop now)"
"""Said on stderr at the first SIGTERM or Ctrl-C: a round (its checks) may take a while yet."""


def stop_on_signals(output: Output | None = None) -> threading.Event:
    """An event set by the first SIGTERM or SIGINT (said on `output`'s stderr); the watcher checks it between
    rounds, so the current round finishes. A second one raises KeyboardInterrupt (the command exits at once,
    `interrupted`), mid-round; a watch still releases its lease on the way out."""
    stop = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        if output is not None:  # written by a thread: this handler may have interrupted a write to stderr
            threading.Thread(target=_say, args=(output, STOPPING), name="stopping", daemon=True).start()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
    return stop


def _say(output: Output, line: str) -> None:
    """One line on stderr, in every format, between the lines of the rounds."""
    with WatchPrinter.lock:
        output.err.write(output.redact(line) + "\n")
        output.err.flush()


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
