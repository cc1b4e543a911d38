"""The HTML report opened in a real headless Chromium: the DOM has the page and its charts; it paints."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from tests.unit.test_report import report

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(autouse=True)
def _chromium_installed() -> None:
    """No browser is a failure, not a skip: `.ci/run` installs it (apt-get install chromium)."""
    assert CHROMIUM.exists(), (
        "/usr/bin/chromium is missing: install Debian's `chromium` package (.ci/run does)"
    )


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium offline, with its own throwaway profile."""
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    return subprocess.run(
        [str(CHROMIUM), *flags, *args], capture_output=True, text=True, timeout=180, check=False
    )


@pytest.fixture
def page(tmp_path: Path) -> Path:
    path = tmp_path / "report.html"
    path.write_text(report(), encoding="utf-8")
    return path


def test_dom_has_the_sections_and_svg_charts(tmp_path: Path, page: Path) -> None:
    done = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert "<title>pgboss &lt;migration&gt;: migration report</title>" in dom
    for section in ('id="timeline"', 'id="charts"', 'id="decisions"'):
        assert section in dom
    assert dom.count('<svg class="series"') == 3
    assert dom.count('class="threshold"') == 5
    assert 'aria-label="worker-memory over time"' in dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # the hostile reason stayed text


def test_screenshot_is_a_real_picture(tmp_path: Path, page: Path) -> None:
    png = tmp_path / "report.png"
    done = chromium(tmp_path, "--window-size=1000,2600", f"--screenshot={png}", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1000, 2600)
    assert len(data) > 50_000  # text, charts and colours; a blank page of this size is a few kB
