"""Which values of a runbook are secrets: the password and every query-string value of each URL it names,
header values, webhook URLs, and the values of environment variables whose names look secret.

They feed every `Redactor` (output, state rows, journal, webhook bodies), which also masks their encoded
and escaped forms; URL patterns are masked whether or not their values are known here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import fields, is_dataclass
from typing import Any
from urllib.parse import unquote, unquote_plus

from runbook.model import Runbook
from runbook.redact import URL_PASSWORD

_REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)")
_SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|KEY|AUTH|CREDENTIAL|PRIVATE|DSN", re.IGNORECASE)
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)


_PLAIN_VALUE = re.compile(r"[+-]?[0-9][0-9_.eE+-]*|true|false|null|none|yes|no|on|off", re.I)
"""Query values not masked by value (a number or a boolean would be masked in every JSON document); in the
URL itself every query value is still masked (runbook.redact)."""
_LIBPQ_PLAIN = frozenset(
    [
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "sslmode",
        "application_name",
        "fallback_application_name",
        "connect_timeout",
        "target_session_attrs",
        "load_balance_hosts",
        "client_encoding",
        "options",
        "gssencmode",
        "channel_binding",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
    ]
)
"""Connection parameters of a PostgreSQL URL that are not secrets (a socket folder, a port, a user name)."""


def url_secrets(url: str) -> list[str]:
    """The password of `url`'s userinfo and its query-string values (but plain numbers and booleans, and the
    non-secret connection parameters of a PostgreSQL URL), as written and decoded."""
    out: list[str] = []
    rest = url
    m = URL_PASSWORD.search(url)
    if m:
        out.append(m["pw"])
        rest = url[m.end() :]
    postgres = url.lower().startswith(("postgres://", "postgresql://"))
    if "?" in rest:
        query = rest.split("?", 1)[1].split("#", 1)[0]
        for key, _, value in (pair.partition("=") for pair in re.split(r"[&;]", query) if "=" in pair):
            if _PLAIN_VALUE.fullmatch(unquote_plus(value)) or (postgres and unquote(key) in _LIBPQ_PLAIN):
                continue
            out.append(value)
    return [v for s in out for v in {s, unquote(s), unquote_plus(s)} if v]


def urls_in(value: Any, depth: int = 0) -> Iterator[str]:
    """Every URL inside `value` (dataclasses, mappings, sequences): `scheme://...`, or a path with a query."""
    if depth > 8:
        return
    if isinstance(value, str):
        text = value.strip()
        if _SCHEME.match(text) or (text.startswith("/") and "?" in text):  # a path joined to the app URL
            yield text
    elif is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            yield from urls_in(getattr(value, f.name, None), depth + 1)
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from urls_in(v, depth + 1)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from urls_in(v, depth + 1)


def looks_secret(name: str) -> bool:
    """Whether an environment variable's name says it holds a secret (TOKEN, PASSWORD, KEY, DSN, ...)."""
    return _SECRET_NAME.search(name) is not None


def env_secrets(text: str, env: Mapping[str, str]) -> list[str]:
    """Values of the variables `text` references (`${NAME}`) whose names look secret, and the secret parts
    (passwords, query values) of every referenced value that is a URL."""
    out: list[str] = []
    for name in {m["name"] for m in _REFERENCE.finditer(text)}:
        value = env.get(name) or ""
        if looks_secret(name):
            out.append(value)
        if "://" in value:
            out += url_secrets(value)
    return [v for v in out if v]


def runbook_secrets(runbook: Runbook, extra: Iterable[str] = ()) -> list[str]:
    """The secret values of a loaded runbook's settings (its checks' own are added when they run)."""
    st = runbook.settings
    out = [*st.app.headers.values(), *(w.url for w in st.notifications), *extra]
    # `Bearer abc...`: the credential alone is secret too (it may also appear in a query string).
    out += [part for value in st.app.headers.values() for part in str(value).split()[1:] if len(part) >= 8]
    for url in urls_in(st):
        out += url_secrets(url)
    return out
