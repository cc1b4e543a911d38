"""The commands API: one module per command, each a function that takes explicit arguments and returns a
result object (rendered by `runbook.output`). The click layer in `runbook.cli` only parses and calls these."""
