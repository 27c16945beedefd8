"""The report in a real browser: one headless Chromium, driven over the DevTools protocol (benchmarks/cdp.py).

Opened from file:// as an examiner would: no console error, warning or CSP violation, no request
outside the report folder, every picture decodes, every timeline mark is a link that lands on its
sighting when clicked, every clip plays (and decodes with PyAV to the right length), and the case
page's filter narrows the list. Screenshots are kept under test-artifacts/.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import av
import cv2
import pytest
from conftest import data_path
from tests_support import write_two_camera_footage

from vidcluster.commands import workflow
from vidcluster.config import Config, ReportConfig, SourcesConfig
from vidcluster.run.pipeline import analyse

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
EVIL_NAME = "<img src=x onerror=alert(1)>.mp4"
CONTEXT_S = 1.0


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Obama in a normal file and in one whose name is an HTML injection; Biden once. Clocks in Berlin."""
    root = write_two_camera_footage(
        tmp_path_factory.mktemp("footage"),
        data_path("hamilton", "obama.jpg"),
        data_path("hamilton", "biden.jpg"),
        hall_obama_name=EVIL_NAME,
    )
    out = tmp_path_factory.mktemp("out") / "out"
    cfg = Config(
        sources=SourcesConfig(timezone="Europe/Berlin"),
        report=ReportConfig(clip_context_s=CONTEXT_S, case="2026/117", examiner="J. Doe"),
    )
    summary = analyse([root], out, cfg)
    assert len(summary.identities) == 2
    obama_id = next(i["id"] for i in summary.identities if i["n_sightings"] == 2)
    workflow.name(out, obama_id, "<script>alert(3)</script> Barack")
    return out / "report", obama_id


@pytest.fixture
def tab(browser):
    t = browser.new_tab(1200, 2400)  # tall: lazy images load without scrolling
    yield t
    t.close()


def open_clean(tab, page: Path) -> None:
    """Open a page and check it loaded quietly, from its own folder only, with every image decoded."""
    tab.open(page.as_uri())
    tab.eval(
        "Promise.all([...document.images].map(i => i.complete ? 1 : new Promise(r => "
        "{ i.addEventListener('load', r); i.addEventListener('error', r); })))",
        await_promise=True,
    )
    assert tab.problems() == []
    folder = page.parent.resolve().as_uri() + "/"
    outside = [u for u in tab.requests() if not u.startswith((folder, "data:"))]
    assert outside == [], outside
    assert tab.failed_requests() == []
    broken = tab.eval("[...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
    assert broken == []


def assert_rendered(path: Path) -> None:
    """Not blank: text and pictures make the page far from one flat colour."""
    image = cv2.imread(str(path))
    assert image is not None
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    assert gray.std() > 10 and (gray < 128).mean() > 0.005


@pytest.mark.parametrize(
    "name, shot",
    [
        ("index.html", "report-index.png"),
        ("identity-{obama}.html", "report-identity.png"),
        ("case.html", "report-case.png"),
    ],
)
def test_pages_load_cleanly_and_screenshot(report, tab, name, shot):
    folder, obama_id = report
    page = folder / name.format(obama=obama_id)
    open_clean(tab, page)
    n_images = tab.eval("document.images.length")
    assert n_images >= 2
    text = tab.eval("document.body.innerText")
    assert "Case 2026/117 \u00b7 examiner J. Doe" in text
    assert "(UTC+01:00)" in text  # the cameras' clock, with its offset
    assert "<script>alert(3)</script> Barack" in text or name == "index.html"  # the label, as text
    assert tab.eval("document.querySelectorAll('script').length") == (1 if name == "case.html" else 0)
    assert_rendered(tab.screenshot(ARTIFACTS / shot))


def test_every_timeline_mark_lands_on_its_sighting(report, tab):
    folder, obama_id = report
    clicked = 0
    for name in ("index.html", f"identity-{obama_id}.html", "case.html"):
        page = folder / name
        tab.open(page.as_uri())
        n = tab.eval("document.querySelectorAll('svg.timeline a.marklink').length")
        assert n >= 1, name
        assert n == tab.eval("document.querySelectorAll('svg.timeline rect.mark').length")  # no mark without a link
        for k in range(n):
            if k:
                tab.open(page.as_uri())
            # bring the mark on top of any neighbour it overlaps, scroll to it, click its middle
            x, y, href = tab.eval(
                f"(() => {{ const a = document.querySelectorAll('svg.timeline a.marklink')[{k}];"
                " a.parentNode.appendChild(a); a.scrollIntoView({block: 'center'});"
                " const r = a.querySelector('rect').getBoundingClientRect();"
                " return [r.x + r.width / 2, r.y + r.height / 2, a.getAttribute('href')]; })()"
            )
            since = len(tab.b.events)
            tab.click(x, y)
            tab.wait_navigated(since)
            target_page, _, anchor = href.partition("#")
            assert tab.eval("location.pathname.split('/').pop()") == target_page
            landed = tab.eval(  # the jump may settle a frame after the navigation event: wait up to 2 s
                "new Promise(done => { let n = 0; (function look() { const t = document.querySelector(':target');"
                " const r = t && t.getBoundingClientRect();"
                " if ((t && r.bottom > 0 && r.top < innerHeight) || ++n > 40) done(t ? [t.id, r.bottom > 0 &&"
                " r.top < innerHeight, t.innerText] : null); else setTimeout(look, 50); })(); })",
                await_promise=True,
            )
            assert landed is not None, href
            assert landed[0] == anchor and landed[1], (href, landed)
            assert f"sighting:{anchor.split('-')[1]}" in landed[2]  # the row of that very sighting
            clicked += 1
    assert clicked == 3 + 2 + 3  # index, Obama's page, the case timeline


def clip_expectations(folder: Path) -> dict[str, float]:
    """Clip path -> expected duration: the sighting with CONTEXT_S each side, inside its 3 s file."""
    out = {}
    for ident in json.loads((folder / "identities.json").read_text()):
        for s in ident["sightings"]:
            a = max(0.0, s["start_offset_s"] - CONTEXT_S)
            b = min(3.0, s["end_offset_s"] + CONTEXT_S)
            out[s["clip"]] = b - a
    return out


def test_every_clip_plays(report, tab):
    folder, _obama_id = report
    expected = clip_expectations(folder)
    assert len(expected) == 3 and all(expected)
    for clip, duration_s in expected.items():
        with av.open(str(folder / clip)) as c:
            stream = c.streams.video[0]
            assert stream.codec_context.name == "h264"
            times = [float(f.time) for f in c.decode(stream)]
        assert times[-1] + 0.1 == pytest.approx(duration_s, abs=0.11), clip  # 10 fps footage
    played = {}
    for ident in json.loads((folder / "identities.json").read_text()):
        tab.open((folder / f"identity-{ident['id']}.html").as_uri())
        result = tab.eval(
            "Promise.all([...document.querySelectorAll('video.clip')].map(v => { v.muted = true;"
            " return v.play().then(() => new Promise(r => setTimeout(r, 300)))"
            ".then(() => [v.getAttribute('src'), v.currentTime, v.duration, v.videoWidth, v.error && v.error.code]); }))",
            await_promise=True,
        )
        for src, current, duration, width, error in result:
            assert error is None and width > 0 and current > 0, src
            played[src] = duration
        assert tab.problems() == []
    assert set(played) == set(expected)
    for src, duration in played.items():
        assert duration == pytest.approx(expected[src], abs=0.15), src


def test_filter_narrows_the_list(report, tab):
    folder, _ = report
    tab.open((folder / "case.html").as_uri())

    def apply(camera: str = "", who: str = "", start: str = "", end: str = "") -> list[str]:
        return tab.eval(
            "(() => { const f = document.getElementById('filter');"
            f" f.elements.camera.value = {json.dumps(camera)}; f.elements.who.value = {json.dumps(who)};"
            f" f.elements.from.value = {json.dumps(start)}; f.elements.to.value = {json.dumps(end)};"
            " f.dispatchEvent(new Event('input'));"
            " const rows = [...document.querySelectorAll('#case-list tbody tr')].filter(r => !r.hidden);"
            " if (String(rows.length) !== document.getElementById('shown').textContent) return null;"
            " return rows.map(r => r.getAttribute('data-camera') + ' ' + r.getAttribute('data-local')); })()"
        )

    everything = apply()
    assert len(everything) == 3
    assert apply(camera="hall") == [r for r in everything if r.startswith("hall ")] and len(apply(camera="hall")) == 2
    assert len(apply(who="barack")) == 2 and apply(who="nobody") == []
    assert apply(start="2026-03-14T10:05:00") == [r for r in everything if r.split(" ", 1)[1] >= "2026-03-14 10:05"]
    assert apply(start="2026-03-14T10:05", end="2026-03-14T10:15") == ["hall 2026-03-14 10:10:00"]
    assert apply(end="2026-03-14T10:00") == ["door 2026-03-14 10:00:00"]  # 'to' a minute includes that minute
    tab.eval("document.querySelector('#filter button[type=reset]').click()")
    assert (
        tab.eval(
            "new Promise(r => setTimeout(() => r(document.getElementById('shown').textContent), 50))",
            await_promise=True,
        )
        == "3"
    )
    assert tab.problems() == []  # the script ran: its hash is the one the CSP allows


def test_filter_narrows_the_timeline_and_the_paths_too(report, tab):
    """The case filter hides the timeline marks and path steps of the sightings it leaves out, a
    path with none left, and the arrow before a path's first step still shown."""
    folder, obama_id = report
    tab.open((folder / "case.html").as_uri())

    def apply(camera: str = "", who: str = "") -> dict:
        return tab.eval(
            "(() => { const f = document.getElementById('filter');"
            f" f.elements.camera.value = {json.dumps(camera)}; f.elements.who.value = {json.dumps(who)};"
            " f.dispatchEvent(new Event('input'));"
            " const on = el => getComputedStyle(el).display !== 'none';"
            " const rows = [...document.querySelectorAll('#case-list tbody tr')].filter(r => !r.hidden)"
            "   .map(r => r.getAttribute('data-sighting')).sort();"
            " const marks = [...document.querySelectorAll('#case-timeline a.marklink')].filter(on)"
            "   .map(a => a.getAttribute('data-sighting')).sort();"
            " const paths = [...document.querySelectorAll('#paths li')].filter(on).map(li => li.innerText.trim());"
            " return {rows, marks, paths}; })()"
        )

    everything = apply()
    assert len(everything["rows"]) == 3 and everything["marks"] == everything["rows"]
    assert len(everything["paths"]) == 2
    door = apply(camera="door")
    assert len(door["rows"]) == 1 and door["marks"] == door["rows"]
    (path,) = door["paths"]  # Obama's path, its hall step and the arrow gone
    assert path.startswith(f"Identity {obama_id}") and "door" in path and "hall" not in path and "\u2192" not in path
    hall = apply(camera="hall")
    assert len(hall["rows"]) == 2 and hall["marks"] == hall["rows"] and len(hall["paths"]) == 2
    assert all(": hall" in p and "\u2192" not in p for p in hall["paths"])  # a path that starts at its second step
    nobody = apply(who="nobody")
    assert nobody == {"rows": [], "marks": [], "paths": []}
    assert apply() == everything
    assert tab.problems() == []


def test_printed_case_page(report, tab):
    """Printed: no filter or players, the case line in the page, case / time / 'page N of M' in the margins."""
    folder, _ = report
    tab.open((folder / "case.html").as_uri())
    tab.call("Emulation.setEmulatedMedia", {"media": "print"})
    shown = tab.eval(
        "['form.filter', 'nav', '.print-only'].map(q => getComputedStyle(document.querySelector(q)).display)"
    )
    assert shown == ["none", "none", "block"]
    margins = tab.eval(
        "[...document.styleSheets].flatMap(s => [...s.cssRules]).filter(r => r.type === 6)"
        ".map(r => r.cssText).join(' ')"
    )  # CSSPageRule
    for box in ("@top-left", "@top-right", "@bottom-right", "counter(pages)", "Case 2026/117", "generated 20"):
        assert box in margins, box
    pdf = base64.b64decode(tab.call("Page.printToPDF", {"displayHeaderFooter": False})["data"])
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    tab.call("Emulation.setEmulatedMedia", {"media": ""})
    assert tab.problems() == []


def test_hostile_file_name_shows_as_text(report, tab):
    folder, obama_id = report
    for name in ("index.html", f"identity-{obama_id}.html", "case.html"):
        open_clean(tab, folder / name)
        assert tab.eval("document.querySelectorAll('img[src=x], [onerror]').length") == 0
        if name != "case.html":
            assert EVIL_NAME in tab.eval("document.body.innerText")


def test_search_page_in_chromium(report, tab):
    from vidcluster.commands.search import search

    folder, _ = report
    result = search(folder.parent, data_path("hamilton", "obama2.jpg"))
    page = result.folder / "index.html"
    tab.open(page.as_uri())
    tab.eval(
        "Promise.all([...document.images].map(i => i.complete ? 1 : new Promise(r => "
        "{ i.addEventListener('load', r); i.addEventListener('error', r); })))",
        await_promise=True,
    )
    assert tab.problems() == []
    assert tab.eval("document.images.length") >= 2
    # a portrait photo does not make a row tall: snapshots are bounded in both directions
    assert (
        tab.eval("Math.max(...[...document.querySelectorAll('img.snap')].map(i => i.getBoundingClientRect().height))")
        <= 166
    )
    assert EVIL_NAME in tab.eval("document.body.innerText")
    assert_rendered(tab.screenshot(ARTIFACTS / "search-results.png"))


def test_the_harness_sees_errors_and_outside_requests(tab, tmp_path):
    """A blocked inline script and a request to another folder are both noticed."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src *">'
        '<p>x</p><img src="../elsewhere.png"><script>console.log(1)</script>'
    )
    tab.open(page.as_uri())
    assert tab.problems()
    assert any(u.endswith("/elsewhere.png") for u in tab.requests())
