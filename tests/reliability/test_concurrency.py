"""Many operators at once: rounds of concurrent `migrate advance` / `migrate rollback` processes on one
state. Each round makes exactly one transition; the others are refused (locked, or nothing to do); no event
is lost or duplicated and the flags file always matches the state."""

from __future__ import annotations

import os
import time
from collections import Counter

from runbook.state import TRANSITIONS
from tests.reliability.conftest import NAME, Home, record

ROUNDS = int(os.environ.get("RELIABILITY_ROUNDS", "50"))
"""Rounds (default: the issue's 50, about 3 minutes on the 2-core machine)."""
PROCESSES = int(os.environ.get("RELIABILITY_PROCESSES", "20"))
BUDGET = float(os.environ.get("RELIABILITY_BUDGET", "0"))
"""When set: stop once the next pair of rounds would not fit in this many seconds (at least MIN_ROUNDS)."""
MIN_ROUNDS = 10
DESIRED = {
    "legacy": {"PGBOSS_ENABLED": "false", "PGBOSS_FOR_NEW_EVALS": "false"},
    "one": {"PGBOSS_ENABLED": "true", "PGBOSS_FOR_NEW_EVALS": "false"},
}


def test_concurrent_advance_and_rollback_make_one_transition_per_round(home: Home) -> None:
    home.env["SOAK"] = "1h"  # one -> two stays blocked: a late advance cannot make a second transition
    assert home.run("advance", "--yes", "--dry-run").code == 0
    seen_events = 0
    version = 0
    codes: Counter[int] = Counter()
    started = time.monotonic()
    rounds = 0
    for n in range(ROUNDS):
        spent = time.monotonic() - started
        if BUDGET and n >= MIN_ROUNDS and n % 2 == 0 and spent + 2 * spent / n > BUDGET:
            break  # the next advance + rollback pair would not fit in the budget
        rounds += 1
        forward = n % 2 == 0
        args = ("advance", "--yes") if forward else ("rollback", "--reason", f"round {n}")
        procs = [home.popen(*args, module=i % 2 == 1) for i in range(PROCESSES)]
        results = [(p, *p.communicate(timeout=180)) for p in procs]
        round_codes = [p.returncode for p, _, _ in results]
        codes.update(round_codes)
        for p, out, err in results:
            assert "Traceback" not in out + err, err
            if p.returncode == 3:
                assert f'runbook "{NAME}" is locked by ' in err, err
            elif p.returncode == 1:
                expected = "is blocked" if forward else "nothing to roll back"
                assert expected in out + err, out + err
        winner = 0 if forward else 4
        assert round_codes.count(winner) == 1, (n, sorted(round_codes))
        assert set(round_codes) <= {winner, 1, 3}, (n, sorted(round_codes))

        events = home.events()
        new = events[seen_events:]
        seen_events = len(events)
        moved = [e for e in new if e.operation in TRANSITIONS and e.operation != "init"]
        assert [e.operation for e in moved] == ["advance" if forward else "rollback"], (n, new)
        intents = [e for e in new if e.operation == "intent"]
        assert len(intents) == 1 and moved[0].intent_id == intents[0].id
        stage = "one" if forward else "legacy"
        assert (moved[0].to_stage, moved[0].version) == (stage, version + 2 if n == 0 else version + 1)
        version = moved[0].version or 0
        with home.store() as store:
            state = store.require(NAME)
            assert state.pending_intent is None
            assert store.lock_holder(NAME) == (None, None)  # every process let go of the lock
        assert (state.stage, state.version, state.flags) == (stage, version, DESIRED[stage])
        flags = home.flags()
        assert {k: flags[k] for k in DESIRED[stage]} == DESIRED[stage]
        assert flags["OTHER"] == "keep-me"

    events = home.events()
    by_op = Counter(e.operation for e in events)
    versions = [e.version for e in events if e.operation in TRANSITIONS]
    assert versions == list(range(1, rounds + 2)), versions
    assert by_op == Counter(
        {"init": 1, "intent": rounds, "advance": (rounds + 1) // 2, "rollback": rounds // 2}
    )
    assert len({e.uuid for e in events}) == len(events)
    lost = rounds - (by_op["advance"] + by_op["rollback"])
    duplicated = len(events) - len({(e.operation, e.version) for e in events})
    seconds = time.monotonic() - started
    record(
        f"RELIABILITY concurrency: {rounds} rounds x {PROCESSES} processes: "
        f"{by_op['advance'] + by_op['rollback']} transitions ({by_op['advance']} advance, "
        f"{by_op['rollback']} rollback), {lost} lost, {duplicated} duplicated; exit codes "
        + ", ".join(f"{c}: {k}" for c, k in sorted(codes.items()))
        + f"; {seconds:.0f}s"
    )
