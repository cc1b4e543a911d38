"""`migrate scaffold`: write the app half of the runbook (flags client, queue manager, the endpoints `migrate`
reads) into the app, named after the runbook and correct for its pg-boss major; `--check` only compares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook.errors import UsageError
from runbook.exitcodes import ExitCode
from runbook.scaffold_detect import MAJORS, detect_pgboss
from runbook.scaffold_files import Planned, plan_files, write_files
from runbook.scaffold_render import FRAMEWORKS, LANGS, recorded_choices, render_app

DEFAULT_OUT = "runbook-app"


@dataclass
class ScaffoldResult:
    out: str
    framework: str
    lang: str
    pgboss: str
    pgboss_source: str
    runbook: str
    check: bool
    files: list[dict[str, str]] = field(default_factory=list)
    diff: str = ""
    warnings: list[str] = field(default_factory=list)
    template: str = "scaffold"
    exit_code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "out": self.out,
            "framework": self.framework,
            "lang": self.lang,
            "pgboss": self.pgboss,
            "pgboss_source": self.pgboss_source,
            "runbook": self.runbook,
            "check": self.check,
            "files": self.files,
            "kept": [f["path"] for f in self.files if f["action"] in ("kept-edited", "kept-foreign")],
            "diff": self.diff,
            "warnings": self.warnings,
            "exit_code": int(self.exit_code),
        }


def scaffold(
    runbook_file: str | Path,
    *,
    out: str | Path = DEFAULT_OUT,
    framework: str | None = None,
    lang: str | None = None,
    pgboss: str | None = None,
    app: str | Path | None = None,
    check: bool = False,
    force: bool = False,
    env: Mapping[str, str] | None = None,
) -> ScaffoldResult:
    """Render, compare and (unless `check`) write. Every input is checked before the first file is written."""
    from runbook.contract_runbook import stale_reads
    from runbook.scaffold_names import app_names
    from runbook.spec import load_runbook

    recorded = recorded_choices(Path(out))
    # unset: what the files already in --out were written with (so --check and a re-run keep an Express app
    # Express), else next/ts
    framework = framework or (recorded[1] if recorded else "next")
    lang = lang or (recorded[2] if recorded else "ts")
    _choice(framework, FRAMEWORKS, "--framework")
    _choice(lang, LANGS, "--lang")
    if pgboss is not None:
        _choice(pgboss, MAJORS, "--pgboss")
    app_dir = Path(app) if app is not None else Path.cwd()
    if app is not None and not app_dir.is_dir():
        raise UsageError(
            f"--app {app}: not a folder", hint="pass --app with the folder of the app's package.json"
        )
    rb = load_runbook(runbook_file, env=env)
    names = app_names(rb)
    detected = detect_pgboss(app_dir)
    warnings = stale_reads(rb)
    if framework == "next":
        warnings += next_location(Path(out), app_dir)
    if pgboss is None and detected.major is None and recorded:
        pgboss, source = recorded[0], f"the files in {out}"
    elif pgboss is None:
        if detected.major is None:
            raise UsageError(
                f"cannot tell which pg-boss the app uses ({detected.source})",
                hint="pass --pgboss 10, 11 or 12 (or --app with the folder of the app's package.json)",
            )
        pgboss, source = detected.major, detected.source
    else:
        source = "--pgboss"
        if detected.major is not None and detected.major != pgboss:
            warnings.append(f"--pgboss {pgboss}, but {detected.source} says pg-boss {detected.major}")
    files = render_app(names, framework=framework, lang=lang, major=pgboss)
    planned = plan_files(Path(out), files)
    result = ScaffoldResult(
        out=str(out),
        framework=framework,
        lang=lang,
        pgboss=pgboss,
        pgboss_source=source,
        runbook=str(runbook_file),
        check=check,
        warnings=warnings,
    )
    if check:
        result.files = [{"path": str(p.path), "action": _check_word(p)} for p in planned]
        result.diff = "".join(p.diff() for p in planned if p.action != "same")
        result.exit_code = ExitCode.NOT_READY if result.diff else ExitCode.OK
        return result
    write_files(planned, force=force)
    result.files = [{"path": str(p.path), "action": _write_word(p, force)} for p in planned]
    if any(p.kept for p in planned) and not force:
        result.exit_code = ExitCode.NOT_READY
    return result


def next_location(out: Path, app_dir: Path) -> list[str]:
    """A warning when Next would not serve the routes written under `out`/app/api: the app router it serves
    (app/, else src/app/, of the app: a folder with a layout or page somewhere in it, route groups and
    segments included) is another folder. Nothing when no app router is found."""

    def router(folder: Path) -> bool:
        return folder.is_dir() and any(p.is_file() for g in ("layout.*", "page.*") for p in folder.rglob(g))

    served = next((d for d in (app_dir / "app", app_dir / "src" / "app") if router(d)), None)
    if served is None or served.resolve() == (out / "app").resolve():
        return []
    here = Path.cwd()
    router_dir = served.resolve()
    shown_router = router_dir.relative_to(here) if router_dir.is_relative_to(here) else router_dir
    holder, api = shown_router.parent, out / "app" / "api"
    shadowed = served == app_dir / "app" and (app_dir / "src" / "app").resolve() == (out / "app").resolve()
    also = " (Next ignores src/app when app/ exists)" if shadowed else ""
    return [
        f"Next serves the app router in {shown_router}/{also}, so the routes written to {api} are not "
        f"served; pass --out {holder} (the folder holding app/) to write them where Next finds them"
    ]


def _choice(value: str, allowed: tuple[str, ...], option: str) -> None:
    if value not in allowed:
        raise UsageError(
            f"{option} {value!r} is not one of {', '.join(allowed)}", hint=f"pass {option} {allowed[0]}"
        )


def _check_word(p: Planned) -> str:
    return {"create": "missing", "update": "outdated", "same": "up-to-date"}.get(p.action, p.action)


def _write_word(p: Planned, force: bool) -> str:
    if p.kept:
        return "overwritten" if force else f"kept-{p.action}"
    return {"create": "created", "update": "updated", "same": "unchanged"}[p.action]
