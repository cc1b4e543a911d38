"""runbook: staged, flag-gated, measured migrations; shipped with the pg-boss runbook."""

from __future__ import annotations

__version__ = "0.1.0"
