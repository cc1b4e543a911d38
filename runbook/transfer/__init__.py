"""`migrate transfer`: move claimable legacy rows into pg-boss, exactly once (issue 12)."""
