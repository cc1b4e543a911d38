"""Check the shape of a PostgreSQL URL before libpq sees it.

libpq quotes the parts of a URL it cannot parse in its errors (`unexpected spaces found in "<password>"`,
`failed to resolve host '<rest of the password>@db'`), so a password holding `@`, `/`, `%` or a space that
is not percent-encoded would reach the output. Such URLs are refused here, with a message that quotes
nothing of the URL and says how to write it.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

_SCHEMES = ("postgresql://", "postgres://")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
ENCODE_HINT = "percent-encode the user and password (@ -> %40, / -> %2F, % -> %25, space -> %20, : -> %3A)"


def url_problem(url: str) -> str | None:
    """Why `url` cannot be given to libpq without it echoing a part of it, or None when it can.

    Key=value connection strings and other schemes are not judged (None)."""
    lowered = url[:16].lower()
    scheme = next((s for s in _SCHEMES if lowered.startswith(s)), None)
    if scheme is None:
        return None
    rest = url[len(scheme) :]
    if any(c.isspace() for c in rest):
        return "it holds a space or another blank character"
    if _BAD_ESCAPE.search(rest):
        return "it holds a % that does not start a %XX escape"
    try:
        unquote_to_bytes(rest).decode("utf-8")
    except UnicodeDecodeError:
        return "it holds %XX escapes that are not UTF-8 text"
    cut = min((i for i in (rest.find("@"), rest.find("/")) if i >= 0), default=-1)
    has_userinfo = cut >= 0 and rest[cut] == "@"
    after = rest[cut + 1 :] if has_userinfo else rest
    authority = re.split(r"[/?]", after, maxsplit=1)[0]
    path = after[len(authority) :].split("?", 1)[0]
    if "@" in authority:
        return "it holds more than one @ before the host (an @ of the password must be written %40)"
    if "@" in path:
        return "it holds an @ after a / (a / of the password must be written %2F)"
    for host in authority.split(","):
        port = host.rsplit("]", 1)[1] if host.startswith("[") and "]" in host else host
        if ":" in port and not port.rsplit(":", 1)[1].isdigit() and port.rsplit(":", 1)[1]:
            return "its port is not a number (a password holding : / ? # must be percent-encoded)"
    return None
