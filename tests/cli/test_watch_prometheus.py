"""A real Prometheus (Debian's package, run from its binary with a temporary config, scraping every second)
scrapes a real `migrate watch --metrics-port` on loopback: the series it stores equal `migrate status -o
json`; a breach is a rollback counter increment that Prometheus has scraped before the watcher exits (the
watcher keeps /metrics up until one scrape read its final figures); every query of the Grafana dashboard
is valid PromQL (`promtool check rules`) and returns data from this Prometheus."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from tests.cli.conftest import Outcome
from tests.cli.metricsupport import Watcher, make_knob, set_knob
from tests.promserver import Prometheus, prometheus_scraping, promtool
from tests.unit.test_grafana_dashboard import DASHBOARD, expressions

Migrate = Callable[..., Outcome]
RB = '{runbook="cli-test"}'


def grafana_to_promql(expr: str) -> str:
    """A panel query as Grafana sends it for the `cli-test` runbook over the last minutes."""
    for var, val in (("$runbook", "cli-test"), ("$job", "runbook")):
        expr = expr.replace(var, val)
    return expr.replace("$__rate_interval", "1m").replace("$__range", "5m")


def test_prometheus_scrapes_the_watcher(rb_dir: Path, migrate: Migrate, pg_url: str, tmp_path: Path) -> None:
    make_knob(pg_url, 0)
    assert migrate("advance", "--yes").code == 0
    w = Watcher(rb_dir, "--metrics-linger", "30s")
    try:
        with prometheus_scraping(f"127.0.0.1:{w.port}", tmp_path / "prometheus") as prom:
            assert prom.wait_for('up{job="runbook"} == 1') == {(): 1.0}
            assert prom.wait_for(f"runbook_watch_rounds_total{RB} >= 2")
            st = json.loads(migrate("-o", "json", "status").out)
            assert prom.values(f"runbook_stage{RB} == 1") == {
                (("runbook", "cli-test"), ("stage", "one")): 1.0
            }
            assert st["stage"] == "one"
            assert prom.values(f"runbook_state_version{RB}") == {(("runbook", "cli-test"),): st["version"]}
            [latest] = st["latest"]
            key = (("check", "healthy"), ("runbook", "cli-test"))
            assert prom.values(f"runbook_check_value{RB}") == {key: float(latest["value"])} == {key: 0.0}
            assert prom.values(f'runbook_check_verdict{{verdict="{latest["verdict"]}"}}') == {
                (*key[:1], ("runbook", "cli-test"), ("verdict", "pass")): 1.0
            }
            assert prom.values(f"runbook_flag_drift{RB}") == {(("runbook", "cli-test"),): 0.0}
            assert st["drift"] == []
            assert prom.values(f"runbook_watcher_lease_held{RB}") == {(("runbook", "cli-test"),): 1.0}
            assert prom.values(f"runbook_soak_required_seconds{RB}") == {
                (("runbook", "cli-test"),): st["soak_seconds"]
            }
            dashboard_queries_run(prom, tmp_path)

            set_knob(pg_url, 9)
            breached = time.monotonic()
            assert w.proc.wait(timeout=30) == 4, w.stderr
            # the watcher left once Prometheus had scraped the rollback, well before --metrics-linger 30s
            assert time.monotonic() - breached < 15, w.stderr
            window = "[2m]"
            got = prom.values(f'max_over_time(runbook_rollbacks_total{{cause="breach"}}{window})')
            assert got == {(("cause", "breach"), ("runbook", "cli-test")): 1.0}
            got = prom.values(f'max_over_time(runbook_stage{{stage="legacy"}}{window})')
            assert got == {(("runbook", "cli-test"), ("stage", "legacy")): 1.0}
            assert prom.values(f"max_over_time(runbook_check_value{RB}{window})") == {key: 9.0}
            assert json.loads(migrate("-o", "json", "status").out)["stage"] == "legacy"
    finally:
        w.stop()


def dashboard_queries_run(prom: Prometheus, tmp_path: Path) -> None:
    """Every panel query parses (`promtool check rules`) and returns data from the live Prometheus (the
    rate-based ones once two scrapes are in)."""
    queries = [grafana_to_promql(e) for e in expressions(json.loads(DASHBOARD.read_text()))]
    rules = tmp_path / "dashboard-rules.yml"
    rules.write_text(
        "groups:\n  - name: dashboard\n    rules:\n"
        + "".join(
            f"      - record: dashboard:q{i}\n        expr: {json.dumps(q)}\n" for i, q in enumerate(queries)
        )
    )
    checked = promtool("check", "rules", str(rules))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # the two expected gaps: soak progress divides by the soak, filtered > 0 (this stage has none), and the
    # monitor (an sql check with `expect`) has no max/min threshold
    gaps = ("runbook_soak_required_seconds", "runbook_check_threshold")
    empty = [q for q in queries if not any(g in q for g in gaps) and not prom.wait_for(q, timeout=15)]
    assert empty == []
    assert [q for q in queries if any(g in q for g in gaps) and prom.values(q)] == []
