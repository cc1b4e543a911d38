"""A `migrate watch --metrics-port 0` process for the metrics tests: its announced URL, its stderr read in
the background (the pipe never fills), and scrapes parsed with prometheus_client's own parser."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from tests.cli.conftest import RUNBOOK

KNOB = "(SELECT v FROM metrics_knob)"
"""The monitor's value read from a table: the test turns a running watcher's check bad with an UPDATE."""
FAST_RUNBOOK = RUNBOOK.replace("    verify_interval: 0.2s\n", "    verify_interval: 0.2s\n    timeout: 1s\n")
"""The CLI tests' runbook with a 1 s check timeout: the liveness window is 3 intervals plus that."""

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def make_knob(pg_url: str, value: int = 0) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS metrics_knob (v int)")
        conn.execute("DELETE FROM metrics_knob")
        conn.execute("INSERT INTO metrics_knob VALUES (%s)", (value,))


def set_knob(pg_url: str, value: int) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE metrics_knob SET v = %s", (value,))


def parse(text: str) -> Series:
    """{(sample name, labels): value} of an exposition."""
    out: Series = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(series: Series, name: str, **labels: str) -> float:
    key = (name, frozenset({"runbook": "cli-test", **labels}.items()))
    assert key in series, f"{name}{labels} not scraped; have {sorted(k[0] for k in series)[:80]}"
    return series[key]


class Watcher:
    """`migrate watch --interval 0.2s --metrics-port 0 ARGS` in `rb_dir`, the knob as its monitor's value."""

    def __init__(self, rb_dir: Path, *args: str) -> None:
        env = {**os.environ, "MONITOR_VALUE": KNOB}
        cmd = [sys.executable, "-m", "runbook", "watch", "--interval", "0.2s", "--metrics-port", "0", *args]
        self.proc = subprocess.Popen(
            cmd, cwd=rb_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.err: list[str] = []
        self.announced = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        assert self.announced.wait(60), f"no metrics URL announced: {self.stderr}"
        found = re.search(r"metrics: (http://\S+)/metrics", self.stderr)
        assert found, self.stderr
        self.url = found.group(1)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err.append(line)
            if "metrics: http" in line:
                self.announced.set()
        self.announced.set()

    @property
    def stderr(self) -> str:
        return "".join(self.err)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10)

    def scrape(self) -> tuple[str, Series]:
        r = self.get("/metrics")
        assert r.status_code == 200, r.text
        return r.text, parse(r.text)

    def wait_rounds(self, n: int, timeout: float = 30.0) -> Series:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _text, series = self.scrape()
            if series.get(("runbook_watch_rounds_total", frozenset({("runbook", "cli-test")})), 0) >= n:
                return series
            time.sleep(0.1)
        raise AssertionError(f"fewer than {n} rounds in {timeout}s: {self.stderr}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
