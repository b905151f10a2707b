"""The HTML report in a real headless browser (Debian's Chromium): it renders, logs nothing to the console
(no script error, no request refused by the page's Content-Security-Policy), and its screenshot is a picture,
not a blank page. Two broken pages prove the console check can fail."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog
from PIL import Image
from spine_helpers import Project
from test_report_html import DUTCH, invoke, three_runs
from waiting import HANG_GUARD

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (`apt-get install -y chromium`; .ci/run installs it in CI)",
)


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


@dataclass
class Rendered:
    console: list[str]
    screenshot: Path


def render(page: Path, tmp_path: Path) -> Rendered:
    assert CHROMIUM is not None
    shot = tmp_path / f"{page.stem}.png"
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        # this machine's network is closed: without these Chromium keeps trying Google's hosts
        "--disable-background-networking",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        # the page's console messages go to stderr as "...:CONSOLE:<line>] "<message>", source: ..."
        "--enable-logging=stderr",
        "--v=0",
        f"--screenshot={shot}",
        "--window-size=1280,2000",
        page.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=HANG_GUARD, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.exists(), done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    return Rendered(console, shot)


def colours(png: Path) -> tuple[int, float]:
    """Distinct colours in the screenshot, and the share of pixels that are not the page's white."""
    with Image.open(png) as image:
        rgb = image.convert("RGB")
        total = rgb.width * rgb.height
        counts = rgb.getcolors(maxcolors=total) or []
    white = sum(n for n, colour in counts if colour == (255, 255, 255))
    return len(counts), (total - white) / total


def test_the_report_renders_without_console_errors_and_is_not_blank(project: Project, tmp_path: Path) -> None:
    three_runs(project, DUTCH)
    page = tmp_path / "report.html"
    assert invoke("report", "-c", str(project.config_path), "--html", str(page)).exit_code == 0
    shown = render(page, tmp_path)
    assert shown.console == []
    distinct, inked = colours(shown.screenshot)
    assert distinct > 50  # text anti-aliasing, bars, lines in several colours
    assert inked > 0.03


def test_the_console_check_sees_a_script_error(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><p>x</p><script>undefinedFunction();</script>", encoding="utf-8")
    shown = render(page, tmp_path)
    assert any("Uncaught ReferenceError" in line for line in shown.console), shown.console


def test_the_console_check_sees_a_request_the_page_refuses(tmp_path: Path) -> None:
    # the report's own policy, and an image from elsewhere (loopback's discard port: blocked before any request)
    page = tmp_path / "leaky.html"
    page.write_text(
        '<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:">'
        '<p>x</p><img src="http://127.0.0.1:9/pixel.png">',
        encoding="utf-8",
    )
    shown = render(page, tmp_path)
    assert any("Content Security Policy" in line for line in shown.console), shown.console


def test_a_blank_page_is_seen_as_blank(tmp_path: Path) -> None:
    page = tmp_path / "blank.html"
    page.write_text("<!DOCTYPE html><title>nothing</title>", encoding="utf-8")
    distinct, inked = colours(render(page, tmp_path).screenshot)
    assert distinct <= 2 and inked < 0.01
