"""Steady synthetic load for the example app: a mix of imports and evaluations at a fixed rate for a fixed
time, bounded, and only to this machine. Each job carries an idempotency key, so a request retried after a
dropped connection (an app restart) never creates a second job."""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
import urllib.parse
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from runbook.errors import ConfigError

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_RATE = 200.0
MAX_SECONDS = 3600.0


@dataclass
class LoadResult:
    """What a load run sent: counts by job type and by the system the app routed each job to."""

    sent: int = 0
    errors: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    by_route: dict[str, int] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Return the result as plain JSON-able data (without the list of keys)."""
        data = asdict(self)
        data.pop("keys")
        return data


def check_local(base_url: str) -> None:
    """Refuse any target but this machine: the load generator is for the example app only."""
    host = urllib.parse.urlsplit(base_url).hostname
    if host not in LOCAL_HOSTS:
        raise ConfigError(
            f"the load generator only targets 127.0.0.1, not {host!r}", hint="point it at the example app"
        )


def _job(index: int, rng: random.Random, eval_share: float) -> tuple[str, str, dict[str, str]]:
    key = f"load-{uuid.uuid4().hex}"
    if rng.random() < eval_share:
        body = {"evaluationId": f"eval-{index}", "agentId": f"agent-{index % 5}", "key": key}
        return "evaluation", "/api/evaluations", body
    return "import-article", "/api/import", {"url": f"https://example.com/articles/{index}", "key": key}


def run_load(
    base_url: str,
    *,
    rate: float = 5.0,
    seconds: float = 10.0,
    eval_share: float = 0.7,
    seed: int | None = None,
    stop: threading.Event | None = None,
    timeout: float = 5.0,
    retries: int = 6,
) -> LoadResult:
    """Send `rate` jobs per second for `seconds` (evaluations with probability `eval_share`); stop early
    when `stop` is set. A failed request is retried with the same key up to `retries` times, backing off
    from 0.25 s to 2 s (about 8 s in all by default: long enough for an app restart)."""
    check_local(base_url)
    if not 0 < rate <= MAX_RATE or not 0 < seconds <= MAX_SECONDS or not 0 <= eval_share <= 1:
        raise ConfigError(
            f"load out of bounds: rate {rate}/s, {seconds} s, eval share {eval_share}",
            hint=f"use 0 < rate <= {MAX_RATE:.0f}, 0 < seconds <= {MAX_SECONDS:.0f}, 0 <= eval share <= 1",
        )
    stop = stop or threading.Event()
    rng = random.Random(seed)
    result = LoadResult()
    began = time.monotonic()
    with httpx.Client(base_url=base_url, timeout=timeout) as client:
        for index in range(int(rate * seconds)):
            if stop.wait(max(0.0, began + index / rate - time.monotonic())):
                break
            kind, path, body = _job(index, rng, eval_share)
            for attempt in range(retries + 1):
                try:
                    response = client.post(path, json=body)
                    response.raise_for_status()
                    route = str(response.json()["routedTo"])
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    if attempt < retries and not stop.wait(min(2.0, 0.25 * 2**attempt)):
                        continue
                    result.errors += 1
                    if len(result.error_samples) < 10:
                        result.error_samples.append(f"{path}: {type(exc).__name__}: {exc}"[:300])
                    break
                result.sent += 1
                result.by_type[kind] = result.by_type.get(kind, 0) + 1
                result.by_route[route] = result.by_route.get(route, 0) + 1
                result.keys.append(body["key"])
                break
    result.seconds = round(time.monotonic() - began, 3)
    return result


class BackgroundLoad:
    """`run_load` in a thread: start(), then stop() returns the result."""

    def __init__(self, base_url: str, **options: Any) -> None:
        check_local(base_url)
        self._stop = threading.Event()
        self._result: LoadResult | None = None
        self._thread = threading.Thread(
            target=self._run, args=(base_url, options), name="runbook-load", daemon=True
        )

    def _run(self, base_url: str, options: dict[str, Any]) -> None:
        self._result = run_load(base_url, stop=self._stop, **options)

    def start(self) -> BackgroundLoad:
        """Start sending in the background."""
        self._thread.start()
        return self

    def wait(self, timeout: float = 60.0) -> LoadResult:
        """Wait for the load to finish by itself (stop() after `timeout`); return what was sent."""
        self._thread.join(timeout)
        return self.stop()

    def stop(self, timeout: float = 30.0) -> LoadResult:
        """Stop sending, wait for the thread, return what was sent."""
        self._stop.set()
        self._thread.join(timeout)
        return self._result or LoadResult()

    def __enter__(self) -> BackgroundLoad:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Run a load from the command line: python -m runbook.demo.load http://127.0.0.1:PORT --rate 5."""
    parser = argparse.ArgumentParser(prog="python -m runbook.demo.load", description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, default=5.0, help="jobs per second (default 5)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long (default 10)")
    parser.add_argument("--eval-share", type=float, default=0.7, help="share of evaluations (default 0.7)")
    args = parser.parse_args(argv)
    try:
        result = run_load(args.url, rate=args.rate, seconds=args.seconds, eval_share=args.eval_share)
    except ConfigError as exc:
        parser.error(str(exc))
    print(json.dumps(result.as_dict()))
    return 0 if result.errors == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
