"""A real Prometheus for the tests: Debian's `prometheus` package (prometheus and promtool), installed with
apt-get where missing (tests/debian.py; the Debian service is never started), and a server run from the
binary with a temporary config and storage, on loopback."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests import debian


def ensure_prometheus() -> tuple[Path, Path]:
    """prometheus and promtool, from Debian's package when missing."""
    prometheus, promtool = debian.ensure("prometheus", "prometheus", "promtool")
    return prometheus, promtool


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ensure_prometheus()[1]), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prometheus:
    """A running server's HTTP API."""

    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's vector: [{"metric": {...}, "value": [ts, "v"]}, ...]."""
        r = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def values(self, promql: str) -> dict[tuple[tuple[str, str], ...], float]:
        """The vector as {sorted labels without __name__, job, instance: value}."""
        out = {}
        for row in self.query(promql):
            labels = tuple(
                sorted((k, v) for k, v in row["metric"].items() if k not in ("__name__", "job", "instance"))
            )
            out[labels] = float(row["value"][1])
        return out

    def wait_for(self, promql: str, timeout: float = 30.0) -> dict[tuple[tuple[str, str], ...], float]:
        """Poll until the query returns a non-empty vector."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.values(promql)
            if got or time.monotonic() > deadline:
                return got
            time.sleep(0.3)


@contextmanager
def prometheus_scraping(target: str, tmp: Path) -> Iterator[Prometheus]:
    """A Prometheus server scraping `target` (host:port) every second, from the binary, on loopback."""
    prometheus = ensure_prometheus()[0]
    tmp.mkdir(parents=True, exist_ok=True)
    config = tmp / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"scrape_configs:\n  - job_name: runbook\n    static_configs:\n      - targets: ['{target}']\n"
    )
    for _attempt in range(3):  # a free port can be taken between the pick and the bind: pick again
        port = free_port()
        log = (tmp / "prometheus.log").open("w")
        proc = subprocess.Popen(
            [
                str(prometheus),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            if _ready(url, proc):
                yield Prometheus(url)
                return
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
    raise AssertionError("prometheus did not start:\n" + (tmp / "prometheus.log").read_text()[-3000:])


def _ready(url: str, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False
