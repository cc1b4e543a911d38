"""Secrets never reach output: passwords in URLs and values the runbook marks as secret are masked."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@", re.I)
_KV_PASSWORD = re.compile(r"(?P<key>\bpassword\s*=\s*)(?P<pw>'[^']*'|\S+)", re.I)


def redact_url(url: str) -> str:
    """`postgres://app:s3cret@db/x` -> `postgres://app:***@db/x`; also `password=...` in key=value DSNs."""
    out = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", url)
    return _KV_PASSWORD.sub(lambda m: f"{m['key']}{MASK}", out)


class Redactor:
    """Masks URL passwords and a set of known secret values (tokens, header values, webhook URLs)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def add(self, *secrets: str) -> None:
        self._secrets = sorted(
            {*self._secrets, *(s for s in secrets if s and len(s) >= 4)}, key=len, reverse=True
        )

    def __call__(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, MASK)
        return redact_url(text)
