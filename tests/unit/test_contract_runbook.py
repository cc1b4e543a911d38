"""A runbook's own app contract (runbook.contract_runbook): the schema named after its flags and queues, the
fields its http checks read (a compare's sides too), and the warnings for reads under names its app does not
serve. Pure: runbooks from text, no I/O."""

from __future__ import annotations

import json

import jsonschema

from runbook import contract
from runbook.contract_runbook import STATUS, read_fields, schema, stale_reads
from runbook.model import Runbook
from runbook.spec import load_runbook, load_runbook_text
from tests.conftest import REPO

HEAD = """\
version: 1
name: two-imports
settings:
  database: {url: "postgresql://localhost/app"}
  app: {url: "http://127.0.0.1:9"}
flags:
  BOSS_ON: false
  EVALS_ON: false
stages:
  - id: start
  - id: one
    set: {BOSS_ON: true}
    verify:
      - {name: users, kind: pgboss, metric: queue_exists, queue: import-user}
      - {name: posts, kind: pgboss, metric: queue_exists, queue: import-post}
  - id: two
    set: {EVALS_ON: true}
    verify:
      - {name: evals, kind: pgboss, metric: queue_exists, queue: evaluation-v2}
"""


def load(text: str) -> Runbook:
    return load_runbook_text(text, "rb.yaml", env={})


def test_the_shipped_runbook_gets_the_shipped_file() -> None:
    rb = load_runbook(REPO / "stages.yaml", env={})
    assert schema(rb, STATUS) == contract.schema(STATUS)
    assert list(schema(rb, STATUS)["properties"]) == list(contract.schema(STATUS)["properties"])
    assert schema(None, "health") == schema(rb, "health") == contract.schema("health")
    assert stale_reads(rb) == []


def test_names_and_descriptions_are_the_runbooks() -> None:
    own = schema(load(HEAD), STATUS)
    jsonschema.Draft202012Validator.check_schema(own)
    props = own["properties"]
    briefs = {k: v["description"] for k, v in props.items() if k.endswith("_jobs")}
    assert briefs == {  # two queues share "import": their whole names
        "import_user_jobs": "counts of the import-user queue; null until the queue exists",
        "import_post_jobs": "counts of the import-post queue; null until the queue exists",
        "evaluation_jobs": "counts of the evaluation-v2 queue; null until the queue exists",
    }
    flags = {k: v["description"] for k, v in props["flags"]["properties"].items()}
    assert flags == {
        "BOSS_ON": "the flag is on: pg-boss is switched on and new import-user, import-post jobs go to"
        " pg-boss",
        "EVALS_ON": "the flag is on: new evaluation-v2 jobs go to pg-boss",
    }
    text = json.dumps(own)
    for shipped in ("read by", "import-article", "PGBOSS_", "increment-"):
        assert shipped not in text, shipped  # nothing of the shipped runbook's checks or names


def test_a_queue_whose_key_is_the_shipped_one_is_still_named() -> None:
    text = HEAD.replace("import-user", "import-all").replace(
        "      - {name: posts, kind: pgboss, metric: queue_exists, queue: import-post}\n", ""
    )
    own = schema(load(text), STATUS)
    assert own["properties"]["import_jobs"]["description"].startswith("counts of the import-all queue")
    assert own["properties"]["evaluation_jobs"]["description"].startswith("counts of the evaluation-v2 queue")


STATUS_CHECKS = """\
  - id: three
    monitor:
      - name: cmp
        kind: compare
        max: 2
        a: {name: mine, kind: http, url: /api/admin/pgboss-status, value: import_jobs.pending}
        b: {name: base, kind: http, url: /api/admin/pgboss-status, value: "queues.evaluation-v2.completed"}
      - {name: q, kind: http, url: /api/admin/pgboss-status, expect: ["queues.import-article.failed == 0"]}
      - name: own
        kind: http
        url: /api/admin/pgboss-status
        expect: ["my_field == 1", "flags.EVALS_ON == true"]
      - {name: odd, kind: http, url: "http://[::1/api/admin/pgboss-status", expect: ["flags.NOPE == true"]}
"""


def test_reads_reach_into_a_compare_and_stale_ones_are_named() -> None:
    rb = load(HEAD + STATUS_CHECKS)
    reads = [(r.where.split(": ", 1)[1], r.shown) for r in read_fields(rb)]
    assert reads == [
        ("three monitor `cmp` (a)", "import_jobs.pending"),
        ("three monitor `cmp` (b)", "queues.evaluation-v2.completed"),
        ("three monitor `q`", "queues.import-article.failed"),
        ("three monitor `own`", "my_field"),
        ("three monitor `own`", "flags.EVALS_ON"),
    ]  # a URL Python cannot parse is no contract endpoint (the check's own call reports it)
    warned = [
        (w.split(": ", 1)[1].split(" reads ")[0], w.split(" reads ")[1].split(",")[0])
        for w in stale_reads(rb)
    ]
    assert warned == [
        ("three monitor `cmp` (a)", "import_jobs.pending"),
        ("three monitor `q`", "queues.import-article.failed"),
    ]
    first, second = stale_reads(rb)
    assert "it reports its queues as import_user_jobs (import-user), import_post_jobs (import-post)" in first
    assert (
        "it reports queues.import-user, queues.import-post, queues.evaluation-v2; read one of those" in second
    )
    assert first.endswith(
        "(`migrate -f rb.yaml schema --contract pgboss-status` prints this runbook's contract)"
    )
    assert schema(rb, STATUS)["required"] == ["enabled", "flags"]  # import_jobs is no brief of this runbook


def test_a_runbook_naming_no_queue_gets_no_empty_choice() -> None:
    text = HEAD.split("    verify:")[0] + "  - id: three\n" + STATUS_CHECKS.split("\n", 1)[1]
    warnings = stale_reads(load(text))
    assert [w.split(" reads ")[1].split(",")[0] for w in warnings] == [
        "import_jobs.pending",
        "queues.evaluation-v2.completed",
        "queues.import-article.failed",
    ]
    for w in warnings:
        assert (
            "it reports no queue counts: no check of this runbook names a pg-boss queue; name the queue in a"
            " check (`queue: NAME`)" in w
        )
