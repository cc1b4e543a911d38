"""Secrets never reach output: passwords in URLs, query-string values and values the runbook marks as secret
are masked, in every form a secret takes on its way out (percent-encoded, JSON-escaped, HTML-escaped)."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote, unquote_plus

MASK = "***"
MIN_LENGTH = 4
"""Shorter values are not masked by value (they would mask ordinary words); URL patterns still are."""
# `user:password@host`: the password may hold anything but a line break (`@`, `/`, `%`, spaces, quotes), so it
# runs to the last `@` of the line that is followed by a host (more is masked rather than less).
URL_PASSWORD = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^\n]*)@(?=[^@\s/?#]+(?:[/?#\s]|$))",
    re.I | re.M,
)
_KV_PASSWORD = re.compile(r"(?P<key>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.I)
_URL_QUERY = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^\s?#\"'<>]*\?)(?P<query>[^\s#\"'<>]*)", re.I)
_QUERY_VALUE = re.compile(r"(?P<key>(?:^|[&;])[^=&;]*=)(?P<value>[^&;]*)")


def redact_url(url: str) -> str:
    """`postgres://app:s3cret@db/x?token=t` -> `postgres://app:***@db/x?token=***`; also `password=...` in
    key=value DSNs. Every query-string value is masked, whatever its name."""
    out = URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", url)
    out = _URL_QUERY.sub(lambda m: m["head"] + _mask_query(m["query"]), out)
    return _KV_PASSWORD.sub(lambda m: f"{m['key']}{MASK}", out)


def _mask_query(query: str) -> str:
    return _QUERY_VALUE.sub(lambda m: m["key"] + (MASK if m["value"] else ""), query)


def forms(secret: str) -> set[str]:
    """The ways `secret` can be written out: as is, percent-encoded or decoded, JSON- and HTML-escaped."""
    out = {
        secret,
        unquote(secret),
        unquote_plus(secret),
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
    }
    for s in list(out):
        out |= {
            json.dumps(s)[1:-1],
            json.dumps(s, ensure_ascii=False)[1:-1],
            html.escape(s),
            html.escape(s, False),
        }
    return {s for s in out if len(s) >= MIN_LENGTH}


class Redactor:
    """Masks URL passwords, query values and a set of known secret values (tokens, header values, webhook
    URLs, the passwords and query values of the runbook's URLs) in each of their written forms."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        """Know more secret values (with every form of each)."""
        known = set(self._secrets)
        for s in secrets:
            if s and len(s) >= MIN_LENGTH:
                known |= forms(s)
        self._secrets = sorted(known, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for s in self._secrets:
            if s in text:
                text = text.replace(s, MASK)
        return redact_url(text)
