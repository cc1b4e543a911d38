"""The generated parts of the reference in docs/: the key tables of every check kind (from each kind's
parameters, the dataclasses the loader and `migrate schema` read) and the option tables of every command
(from the click group, subgroups included).

`python -m runbook.docgen [DOCS]` rewrites the blocks between `<!-- BEGIN GENERATED name -->` and
`<!-- END GENERATED name -->` in DOCS (default `docs`); `--check` writes nothing and exits 1 naming the
blocks that are out of date (tests/unit/test_docs.py runs it, so the reference cannot drift).
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

BEGIN = "<!-- BEGIN GENERATED {name}: python -m runbook.docgen -->"
END = "<!-- END GENERATED {name} -->"


def required_keys(params: type) -> set[str]:
    """Keys a kind requires: fields without a default, and those its `__post_init__` refuses empty
    (`url: required, ...`), found by building the parameters with the defaults and filling each one named."""
    fields = {f.name: f for f in dataclasses.fields(params)}
    found = {
        n
        for n, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    given: dict[str, Any] = {n: "x" for n in found}
    for _ in fields:
        try:
            params(**given)
            break
        except (ValueError, TypeError) as exc:
            said = re.match(r"([\w ]+?): (?:both )?required", str(exc))
            names = [n for n in said.group(1).split(" and ") if n in fields] if said else []
            if not names or set(names) <= found:
                break
            found.update(names)
            given.update({n: ("x",) if isinstance(fields[n].default, tuple) else "x" for n in names})
    return found


def _default(field: dataclasses.Field[Any], mark: str | None, required: bool) -> str:
    """A field's default as a reader writes it in YAML: `(required)`, `-` for none, `1h`, `[a, b]`."""
    from runbook.units import format_duration

    if required or (field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING):
        return "(required)"
    value = field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[operator]
    if value is None:
        return "-"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if mark in ("duration", "timeout") and isinstance(value, int | float):
        return f"`{format_duration(value)}`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    if isinstance(value, tuple | list):
        return "`[" + ", ".join(str(v) for v in value) + "]`"
    if isinstance(value, dict):
        return "`{}`" if not value else f"`{value}`"
    return f"`{value}`" if str(value) else '`""`'


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def check_kind_tables() -> str:
    """One heading and key table per installed check kind, in registry order."""
    from runbook.checks import all_kinds
    from runbook.spec.typehints import hints, marker, user_fields

    parts: list[str] = []
    for name, kind in all_kinds().items():
        types_ = hints(kind.params)
        required = required_keys(kind.params)
        rows = ["| key | default | meaning |", "|---|---|---|"]
        for key, field in user_fields(kind.params).items():
            doc = _cell(str(field.metadata.get("doc", "")))
            rows.append(f"| `{key}` | {_default(field, marker(types_[key]), key in required)} | {doc} |")
        parts.append(f"### `{name}`: {kind.summary}\n\n" + "\n".join(rows))
    return "\n\n".join(parts)


def walk(group: click.Group, path: str = "migrate") -> Iterator[tuple[str, click.Command]]:
    """Every command under `group` as (`migrate transfer legacy`, command), depth first, sorted."""
    for name in sorted(group.commands):
        cmd = group.commands[name]
        yield f"{path} {name}", cmd
        if isinstance(cmd, click.Group):
            yield from walk(cmd, f"{path} {name}")


def global_names() -> set[str]:
    """Parameter names of the root group: the global options every subcommand repeats."""
    from runbook.cli import main

    return {p.name for p in main.params if p.name}


def _common_params(group: click.Group) -> set[str]:
    """Parameter names every command under `group` takes (the global options they repeat)."""
    names = [{p.name for p in cmd.params if p.name} for _, cmd in walk(group)]
    return set.intersection(*names) if names else set()


def _option_rows(cmd: click.Command, skip: set[str], only_before: set[str] | None = None) -> list[str]:
    ctx = click.Context(cmd, info_name=cmd.name)
    rows: list[str] = []
    for param in cmd.params:
        if param.name in skip or getattr(param, "hidden", False):
            continue
        if isinstance(param, click.Argument):
            rows.append(f"| `{param.human_readable_name}` (argument) | |")
            continue
        record = param.get_help_record(ctx)
        if record is not None:
            where = " Before the command only." if only_before and param.name in only_before else ""
            rows.append(f"| `{_cell(record[0])}` | {_cell(record[1])}{where} |")
    return rows


def command_tables() -> str:
    """The global options, then one heading, usage, help and option table per command."""
    from runbook.cli import main

    shared = global_names()
    parts = [
        "### Global options (every command)\n\n| option | meaning |\n|---|---|\n"
        + "\n".join(_option_rows(main, set(), shared - _common_params(main)))
    ]
    for path, cmd in walk(main):
        ctx = click.Context(cmd, info_name=path)
        usage = cmd.get_usage(ctx).removeprefix("Usage: ")
        text = [f"### `{path}`", "", f"`{usage}`", "", _cell(cmd.help or cmd.short_help or "")]
        rows = _option_rows(cmd, shared)
        if rows:
            text += ["", "| option | meaning |", "|---|---|", *rows]
        parts.append("\n".join(text))
    return "\n\n".join(parts)


BLOCKS: dict[str, tuple[str, Callable[[], str]]] = {
    "check-kinds": ("runbook-format.md", check_kind_tables),
    "commands": ("commands.md", command_tables),
}


def replace_block(text: str, name: str, body: str) -> str:
    """`text` with the generated block `name` holding `body`. Raises ValueError without its markers."""
    begin, end = BEGIN.format(name=name), END.format(name=name)
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise ValueError(f"no generated block {name!r}: add the lines\n{begin}\n{end}")
    return text[: start + len(begin)] + "\n" + body + "\n" + text[stop:]


def update(docs: Path, *, check: bool) -> list[str]:
    """Rewrite (or with `check`, only compare) every block; the `file#block` names that were stale."""
    texts: dict[Path, str] = {}
    stale: list[str] = []
    for name, (file, make) in BLOCKS.items():
        path = docs / file
        text = texts.get(path) or path.read_text(encoding="utf-8")
        texts[path] = replace_block(text, name, make())
        if texts[path] != text:
            stale.append(f"{path}#{name}")
    if not check:  # every file read and every block found before anything is written
        for path, text in texts.items():
            if any(label.startswith(f"{path}#") for label in stale):
                path.write_text(text, encoding="utf-8")
    return stale


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    rest = [a for a in args if a != "--check"]
    docs = Path(rest[0] if rest else "docs")
    try:
        stale = update(docs, check=check)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name in stale:
        print(f"{'out of date' if check else 'updated'}: {name}")
    if check and stale:
        print("hint: run `python -m runbook.docgen` and commit docs/", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
