"""Benchmarks of the runbook toolkit (not part of `make test`): `python -m bench.<name>`, or `make bench`."""
