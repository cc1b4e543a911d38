"""Variables of the shipped runbook that look like options of `migrate` but are not.

The shipped `stages.yaml` reads `RUNBOOK_FLAG_BACKEND` (settings.flags.type) and `RUNBOOK_STATE_URL`
(settings.state.url) through `${...}`; runbook itself never reads them. A runbook written by hand that does
not reference them would ignore them silently, so every command that loads a runbook warns when one is set
and the runbook does not read it, naming the setting to write instead.
"""

from __future__ import annotations

from collections.abc import Mapping

from runbook.model import Runbook

SHIPPED_VARIABLES = {
    "RUNBOOK_FLAG_BACKEND": ("settings.flags.type", "type: ${RUNBOOK_FLAG_BACKEND:-postgres}"),
    "RUNBOOK_STATE_URL": ("settings.state.url", "url: ${RUNBOOK_STATE_URL:-}"),
}


def unread_variables(rb: Runbook, env: Mapping[str, str]) -> list[str]:
    """A warning per shipped-runbook variable set in `env` that `rb` does not read."""
    return [
        f"warning: {name} is set but {rb.source} does not read it, so it changes nothing: it is a variable "
        f"of the shipped stages.yaml, not of migrate; set {setting} in the runbook (e.g. `{line}`)"
        for name, (setting, line) in SHIPPED_VARIABLES.items()
        if env.get(name) and name not in rb.variables
    ]
