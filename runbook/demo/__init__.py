"""The example app the demo and the end-to-end tests migrate: a controller that runs it (`ExampleApp`), a load
generator (`run_load`, `BackgroundLoad`) and ledger queries that prove every job ran exactly once."""

from runbook.demo.app import ExampleApp, default_app_dir
from runbook.demo.ledger import ledger_summary, wait_until_settled
from runbook.demo.load import BackgroundLoad, LoadResult, run_load

__all__ = [
    "BackgroundLoad",
    "ExampleApp",
    "LoadResult",
    "default_app_dir",
    "ledger_summary",
    "run_load",
    "wait_until_settled",
]
