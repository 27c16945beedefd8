"""The report in a real browser: headless Chromium opens it from file://.

Chromium's log (--enable-logging=stderr) carries every console message of the page as
"...:CONSOLE..." lines, CSP violations included, so "no console errors" means no such line.
The pages run no scripts (the CSP forbids them), so instead of reading naturalWidth the test
checks that every <img> of the rendered DOM points at a file that exists and decodes, and
that the screenshot is not blank. Screenshots are kept under test-artifacts/.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import data_path
from tests_support import write_two_camera_footage
from vidcluster import workflow
from vidcluster.config import Config
from vidcluster.pipeline import analyse

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
EVIL_NAME = "<img src=x onerror=alert(1)>.mp4"


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium binary found (install it with `apt-get install chromium`)")


def run_chromium(url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    args = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", "--enable-logging=stderr", "--v=0",
        "--window-size=1200,1600", *extra, url,
    ]
    return subprocess.run(args, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": "disabled:"})


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


class Elements(HTMLParser):
    """Collects (tag, attrs) of every element of a dumped DOM."""

    def __init__(self):
        super().__init__()
        self.items: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.items.append((tag, dict(attrs)))

    def of(self, tag: str) -> list[dict]:
        return [a for t, a in self.items if t == tag]


def dump_dom(page: Path, tmp_path: Path) -> tuple[str, Elements]:
    result = run_chromium(page.as_uri(), tmp_path, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    assert not console_lines(result.stderr), console_lines(result.stderr)
    parser = Elements()
    parser.feed(result.stdout)
    return result.stdout, parser


def screenshot(page: Path, tmp_path: Path, name: str) -> np.ndarray:
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / name
    target.unlink(missing_ok=True)
    result = run_chromium(page.as_uri(), tmp_path, f"--screenshot={target}")
    assert result.returncode == 0 and target.is_file(), result.stderr[-2000:]
    image = cv2.imread(str(target))
    assert image is not None
    return image


def assert_rendered(image: np.ndarray) -> None:
    """Not blank: text and pictures make the page far from one flat colour."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    assert gray.std() > 10
    assert (gray < 128).mean() > 0.005  # some dark pixels: text


def assert_images_load(page: Path, dom: Elements) -> int:
    images = dom.of("img")
    for attrs in images:
        src = attrs.get("src", "")
        assert src and not re.match(r"^[a-z]+:", src), src  # relative paths only, no URLs
        decoded = cv2.imread(str(page.parent / src))
        assert decoded is not None and decoded.shape[0] > 0 and decoded.shape[1] > 0, src
    return len(images)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Obama in a normal file and in one whose name is an HTML injection; Biden once."""
    chromium()
    root = write_two_camera_footage(
        tmp_path_factory.mktemp("footage"), data_path("hamilton", "obama.jpg"), data_path("hamilton", "biden.jpg"),
        hall_obama_name=EVIL_NAME,
    )
    out = tmp_path_factory.mktemp("out") / "out"
    summary = analyse([root], out, Config())
    assert len(summary.identities) == 2
    obama_id = next(i["id"] for i in summary.identities if i["n_sightings"] == 2)
    workflow.name(out, obama_id, "<script>alert(3)</script> Barack")
    return out / "report", obama_id


def test_index_in_chromium(report, tmp_path):
    folder, _ = report
    page = folder / "index.html"
    html, dom = dump_dom(page, tmp_path)
    assert assert_images_load(page, dom) >= 2
    assert not dom.of("script")
    assert "&lt;script&gt;alert(3)&lt;/script&gt; Barack" in html
    assert_rendered(screenshot(page, tmp_path, "report-index.png"))


def test_identity_page_in_chromium(report, tmp_path):
    folder, obama_id = report
    page = folder / f"identity-{obama_id}.html"
    html, dom = dump_dom(page, tmp_path)
    n = assert_images_load(page, dom)
    assert n >= 3  # montage and one snapshot per sighting
    assert not dom.of("script")
    assert_rendered(screenshot(page, tmp_path, "report-identity.png"))


def test_hostile_file_name_shows_as_text(report, tmp_path):
    folder, obama_id = report
    for name in ("index.html", f"identity-{obama_id}.html"):
        html, dom = dump_dom(folder / name, tmp_path)
        assert not [a for a in dom.of("img") if a.get("src") == "x"]
        assert not [a for a in dom.of("img") if "onerror" in a]
        assert "&lt;img src=x onerror=alert(1)&gt;.mp4" in html  # shown as text


def test_search_page_in_chromium(report, tmp_path):
    from vidcluster.search import search

    folder, _ = report
    result = search(folder.parent, data_path("hamilton", "obama2.jpg"))
    page = result.folder / "index.html"
    html, dom = dump_dom(page, tmp_path)
    assert assert_images_load(page, dom) >= 2  # probe and snapshots
    assert "&lt;img src=x onerror=alert(1)&gt;.mp4" in html
    assert_rendered(screenshot(page, tmp_path, "search-results.png"))


def test_console_errors_are_detected(tmp_path):
    """The harness itself: a page whose inline script the CSP blocks shows up as a console line."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="default-src \'none\'">'
                    "<p>x</p><script>console.log(1)</script>")
    result = run_chromium(page.as_uri(), tmp_path, "--dump-dom")
    assert console_lines(result.stderr)
