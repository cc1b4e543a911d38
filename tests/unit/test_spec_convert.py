"""The generic converter: every supported type hint, driven by small dataclasses, and kinds passed in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from runbook.errors import SpecError
from runbook.model import CheckSpec, Duration, Limits, Size, doc
from runbook.spec import load_runbook_text
from runbook.spec.convert import Converter
from runbook.spec.leaves import INVALID
from runbook.spec.yamlnodes import Issues, compose


@dataclass(frozen=True)
class Inner:
    name: str
    weight: float = 1.0


@dataclass(frozen=True)
class A:
    type: Literal["a"] = "a"
    size: Size = 0


@dataclass(frozen=True)
class B:
    type: Literal["b"] = "b"
    wait: Duration = 5.0


@dataclass(frozen=True)
class Sample:
    title: str = ""
    note: str | None = "default"
    count: int = 0
    ratio: float = 0.0
    on: bool = False
    mode: Literal["fast", "slow"] = "fast"
    tags: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    labels: Mapping[str, int] = field(default_factory=dict)
    inner: Inner | None = None
    items: tuple[Inner, ...] = ()
    choice: A | B = field(default_factory=A)
    wait: Duration = 2.0
    size: Size | None = None
    extra: Any = None


def convert(text: str, tp: Any = Sample, env: Mapping[str, str] | None = None, scale: float = 1.0) -> Any:
    issues = Issues("t.yaml")
    node = compose(text, issues)
    assert node is not None, issues.items
    conv = Converter(issues, env or {}, scale)
    value = conv.convert(node, tp, "x")
    return value, [str(i) for i in issues.ordered()]


def test_every_supported_type_converts() -> None:
    text = """
title: hello
note: ""
count: 3
ratio: 2
on: yes
mode: slow
tags: one
ports: [80, 443]
labels: {a: 1}
inner: {name: n}
items: [{name: i, weight: 0.5}]
choice: {type: b, wait: 1m}
wait: 1h30m
size: 1.5GiB
extra: {k: [1, "${V}"]}
"""
    value, issues = convert(text, env={"V": "v"})
    assert issues == []
    assert value == Sample(
        title="hello",
        note=None,
        count=3,
        ratio=2.0,
        on=True,
        mode="slow",
        tags=("one",),
        ports=(80, 443),
        labels={"a": 1},
        inner=Inner("n"),
        items=(Inner("i", 0.5),),
        choice=B(wait=60.0),
        wait=5400.0,
        size=int(1.5 * 1024**3),
        extra={"k": [1, "v"]},
    )
    assert isinstance(value.ratio, float)


def test_null_means_defaults_and_empty_collections() -> None:
    value, issues = convert("tags:\nlabels:\ninner:\nnote:\n")
    assert issues == []
    assert value == Sample(tags=(), labels={}, inner=None, note=None)
    assert convert("choice: b\n")[0].choice == B()  # a bare discriminator value is the shorthand


def test_wrong_types_are_reported_with_the_value() -> None:
    text = 'count: "ten"\nratio: true\non: 1\ntitle: 3\nports: [1, x]\nmode: quick\nchoice: {type: c}\n'
    text += "wait: soon\n"
    value, issues = convert(text)
    assert value is INVALID
    assert issues == [
        't.yaml:1:8: x.count: expected an integer, got "ten"',
        "t.yaml:2:8: x.ratio: expected a number, got true",
        "t.yaml:3:5: x.on: expected true or false, got 1",
        't.yaml:4:8: x.title: expected a string, got the number 3; quote it ("3") if it is text',
        't.yaml:5:12: x.ports[1]: expected an integer, got "x"',
        't.yaml:6:7: x.mode: expected one of "fast", "slow", got "quick"',
        't.yaml:7:16: x.choice.type: expected one of "a", "b", got "c"',
        't.yaml:8:7: x.wait: expected a duration like 90s, 5m, 24h or 2d, got "soon"',
    ]


def test_unknown_and_missing_keys() -> None:
    value, issues = convert("inner: {nme: x}\nitems: [{name: a, wieght: 2}]\ncolor: red\n")
    assert value is INVALID
    assert issues == [
        't.yaml:1:9: x.inner: unknown key "nme"; did you mean "name"?',
        't.yaml:2:19: x.items[0]: unknown key "wieght"; did you mean "weight"?',
        't.yaml:3:1: x: unknown key "color"; expected one of: choice, count, extra, inner, items, labels, '
        "mode, note, on, ports, ratio, size, tags, title, wait",
    ]


def test_interpolated_plain_scalars_keep_yaml_typing_and_strings_keep_text() -> None:
    env = {"N": "7", "B": "false", "T": "90s", "EMPTY": "", "W": "many"}
    value, issues = convert("count: ${N}\non: ${B}\nwait: ${T}\ntitle: ${N}\nnote: ${EMPTY}\n", env=env)
    assert issues == []
    assert (value.count, value.on, value.wait, value.title, value.note) == (7, False, 90.0, "7", None)
    # quoted (as a ${VAR} inside { } must be): a number field reads the number it holds, a string the text
    value, issues = convert('ratio: "${N}"\ncount: "${N}"\ntitle: "${N}"\n', env=env)
    assert issues == [] and (value.ratio, value.count, value.title) == (7.0, 7, "7")
    value, issues = convert('ratio: "${W}"\n', env=env)
    assert issues == ["t.yaml:1:8: x.ratio: expected a number, got the value of ${W} (text)"]


def test_values_from_the_environment_are_never_echoed() -> None:
    _, issues = convert("count: ${DB_PASSWORD}\n", env={"DB_PASSWORD": "hunter2"})
    assert issues == ["t.yaml:1:8: x.count: expected an integer, got the value of ${DB_PASSWORD} (text)"]
    _, issues = convert("count: ${URL}\n", env={"URL": "postgres://u:pw@h/db"})
    assert issues == ["t.yaml:1:8: x.count: expected an integer, got the value of ${URL} (text)"]


def test_durations_are_scaled_including_defaults() -> None:
    value, issues = convert("choice: {type: b}\n", scale=0.01)
    assert issues == []
    assert value.wait == pytest.approx(0.02)  # Sample.wait default 2.0
    assert value.choice.wait == pytest.approx(0.05)  # B.wait default 5.0


def test_sizes() -> None:
    assert convert("size: 100MB\n")[0].size == 100_000_000
    assert convert("size: 2048\n")[0].size == 2048
    _, issues = convert("size: 10 parsecs\n")
    assert issues == ['t.yaml:1:7: x.size: expected a size like 100MB or 1GiB, got "10 parsecs"']
    _, issues = convert("size: -1\n")
    assert issues == ["t.yaml:1:7: x.size: a size cannot be negative, got -1"]


def test_unsupported_type_is_an_issue_not_a_crash() -> None:
    @dataclass(frozen=True)
    class Odd:
        when: complex = 0j

    assert convert("when: 1\n", Odd)[1] == [
        "t.yaml:1:7: x.when: the loader cannot read fields of type <class 'complex'> (a bug in this kind)"
    ]


def test_nonnegative_limits() -> None:
    issues = Issues("t.yaml")
    node = compose("failure_limit: -1\n", issues)
    assert node is not None
    conv = Converter(issues, {})
    conv.nonnegative.add(Limits)
    assert conv.convert(node, Limits, "limits") is INVALID
    assert [str(i) for i in issues.items] == ["t.yaml:1:16: limits.failure_limit: must be 0 or more, got -1"]


# --- kinds passed in: params with sizes, durations, nested checks, self-validation ------------------------


@dataclass(frozen=True)
class MemParams:
    max: Size = doc("maximum RSS", 0)
    window: Duration = doc("window", 60.0)
    source: Literal["rss", "http"] = "rss"

    def __post_init__(self) -> None:
        if self.max <= 0:
            raise ValueError("max: required, e.g. 100MB")


@dataclass(frozen=True)
class PairParams:
    first: CheckSpec
    others: tuple[CheckSpec, ...] = ()
    tolerance: float = 1.5


KINDS: dict[str, type] = {"mem": MemParams, "pair": PairParams}
HEAD = "version: 1\nname: t\nflags: {F: false}\n"
HEAD += "settings: {defaults: {timeout: 4s, limits: {failure_limit: 2}}}\n"


def load(stages: str, scale: float = 1.0) -> Any:
    return load_runbook_text(
        HEAD + "stages:\n" + stages.lstrip("\n"), "k.yaml", env={}, time_scale=scale, kinds=KINDS
    )


def errors(stages: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        load(stages)
    return [str(i) for i in info.value.issues]


def test_kind_params_sizes_durations_and_nested_checks() -> None:
    rb = load(
        """
  - id: one
    monitor:
      - {name: rss, kind: mem, max: 100MB, window: 10m}
      - name: pair
        kind: pair
        first: {name: inner, kind: mem, max: 1GB, timeout: 1m}
        others:
          - {name: inner2, kind: mem, max: 5, failure_limit: 0}
""",
        scale=0.5,
    )
    rss, pair = rb.stages[0].monitor
    assert rss.params == MemParams(max=100_000_000, window=300.0)
    assert (rss.timeout, rss.limits.failure_limit) == (4.0, 2)  # timeouts are real seconds at any time scale
    assert pair.params.first.params == MemParams(max=1_000_000_000, window=30.0)
    assert (pair.params.first.timeout, pair.params.first.location) == (60.0, "k.yaml:11:16")
    assert pair.params.others[0].limits == Limits(failure_limit=0)


def test_kind_errors() -> None:
    assert errors(
        """
  - id: one
    monitor:
      - {name: a, kind: memm}
      - {name: b, kind: mem}
      - {name: c, kind: mem, max: 1MB, windw: 1m}
      - {name: d, kind: pair, first: {name: e, kind: mem, max: lots}}
      - {name: f, kind: pair}
"""
    ) == [
        'k.yaml:8:25: stages[0].monitor[0].kind: unknown check kind "memm"; did you mean "mem"?',
        "k.yaml:9:9: stages[0].monitor[1]: max: required, e.g. 100MB",
        'k.yaml:10:40: stages[0].monitor[2]: unknown key "windw" for kind mem; did you mean "window"?',
        'k.yaml:11:64: stages[0].monitor[3].first.max: expected a size like 100MB or 1GiB, got "lots"',
        'k.yaml:12:9: stages[0].monitor[4]: missing required key "first"',
    ]


def test_a_kind_that_fails_to_import_is_an_issue() -> None:
    class Broken(Mapping[str, type]):
        def __getitem__(self, name: str) -> type:
            if name != "boom":
                raise KeyError(name)
            raise ImportError("No module named 'psutil'")

        def __iter__(self) -> Any:
            return iter(["boom"])

        def __len__(self) -> int:
            return 1

    with pytest.raises(SpecError) as info:
        load_runbook_text(
            HEAD + "stages:\n  - id: one\n    monitor: [{name: x, kind: boom}]\n",
            "k.yaml",
            env={},
            kinds=Broken(),
        )
    assert str(info.value) == (
        "k.yaml:7:31: stages[0].monitor[0].kind: check kind boom cannot be loaded: No module named 'psutil'"
    )


def test_unresolvable_annotations_are_an_issue() -> None:
    @dataclass(frozen=True)
    class Hidden:
        when: NotImportedAnywhere = None  # type: ignore[name-defined]  # noqa: F821

    assert convert("when: 1\n", Hidden)[1] == [
        "t.yaml:1:1: x: the loader cannot read the fields of Hidden: "
        "name 'NotImportedAnywhere' is not defined (a bug)"
    ]
