"""`vidcluster serve` in a real headless Chromium (benchmarks/cdp.py): an examiner's review by clicking.

On the synthetic case of tests/test_serve.py: open the printed address, merge two identities by
ticking their cards, move a sighting, hide a bystander, choose a cover face, undo the merge;
reload and see the state kept, restart the server and see it again. No console error or CSP
violation on any page, no request to anything but the server, clips play. The store after the
clicks equals the store after the same corrections given on the command line.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_serve import store_state

from benchmarks.cdp import CdpError
from benchmarks.synth_store import write_case
from vidcluster.cli import main
from vidcluster.serve import Running

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return write_case(tmp_path_factory.mktemp("case") / "out", people=5, sightings=3)


class Page:
    """One tab on one server: open, click and wait for the page to draw the new state."""

    def __init__(self, tab, running: Running):
        self.tab, self.running = tab, running
        self.base = f"http://127.0.0.1:{running.server.port}/"
        self.seen: list[str] = []  # every request and problem of every page opened

    def _ready(self) -> str | None:
        return self.tab.eval("document.body && document.body.dataset.ready || null")

    def _wait(self, before: str | None) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            now = self._ready()
            if now is not None and now != before:
                return
            time.sleep(0.03)
        raise CdpError("the page did not draw again")

    def open(self, path: str) -> None:
        self.collect()
        self.tab.open(self.base + path.lstrip("/"))
        self._wait(None)

    def collect(self) -> None:
        self.seen += [f"request {u}" for u in self.tab.requests()] + [f"problem {p}" for p in self.tab.problems()]

    def click(self, selector: str, wait: bool = True) -> None:
        before = self._ready()
        found = self.tab.eval(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        assert found is not None, f"nothing matches {selector}"
        self.tab.click(*found)
        if wait:
            self._wait(before)

    def status(self) -> str:
        return self.tab.eval("document.getElementById('status').textContent")

    def cards(self) -> list[int]:
        return self.tab.eval("[...document.querySelectorAll('.card')].map(c => Number(c.dataset.id))")

    def api(self, path: str):
        return self.tab.eval(f"fetch({json.dumps(path)}).then(r => r.json())", await_promise=True)


def sighting_of(page: Page, identity: int) -> int:
    return page.api(f"/api/identities/{identity}")["sightings"][0]["track_id"]


def test_review_by_clicking(browser, built, tmp_path):
    out = tmp_path / "clicked"
    shutil.copytree(built, out)
    running = Running(out).start()
    tab = browser.new_tab(1280, 2000)
    page = Page(tab, running)
    try:
        tab.open(running.url)  # the printed address: the token, then the same page without it
        page._wait(None)
        assert tab.eval("location.href") == page.base
        assert sorted(page.cards()) == [0, 1, 2, 3, 4]
        listed = page.api("/api/identities")
        assert page.cards() == [i["id"] for i in sorted(listed, key=lambda i: (-i["n_sightings"], i["id"]))]
        for sort, key in (
            ("time", lambda i: (i["first_seen"], i["id"])),
            ("doubt", lambda i: (i["nearest"][0]["distance"], i["id"])),  # no doubt cue here: nearest first
        ):
            before = page._ready()
            tab.eval(
                f"(s => {{ s.value = '{sort}'; s.dispatchEvent(new Event('change')); }})(document.getElementById('sort'))"
            )
            page._wait(before)
            assert page.cards() == [i["id"] for i in sorted(listed, key=key)], sort
        assert tab.eval("location.search") == "?sort=doubt"
        # the doubt cue a card and a page show (this case has none: every person is far from the others)
        assert tab.eval("doubtCue({doubt: 'close', nearest: [{id: 7, distance: 0.41}]}).textContent") == (
            "maybe the same person as 7 (distance 0.41)"
        )
        assert "more than one person" in tab.eval("doubtCue({doubt: 'loose', spread: 1.1, nearest: []}).textContent")
        assert tab.eval("doubtCue({doubt: null, nearest: []})") is None
        # bidirectional controls in a camera, file or label show as written out, as in the static report
        # ('\u202egnp.exe' would read 'exe.png'); an input's value keeps them, so they are saved unchanged
        rlo = json.dumps("cam_\u202egnp.mp4")
        assert tab.eval(f"el('p', {{text: {rlo}}}).textContent") == "cam_\\u202egnp.mp4"
        assert tab.eval(f"el('p', {{title: {rlo}}}, 'x\u2066', {rlo}).outerHTML") == (
            '<p title="cam_\\u202egnp.mp4">x\\u2066cam_\\u202egnp.mp4</p>'
        )
        assert tab.eval(f"el('input', {{value: {rlo}}}).value") == "cam_\u202egnp.mp4"
        assert tab.eval(f"(say({rlo}), statusLine.textContent)") == "cam_\\u202egnp.mp4"
        tab.eval("say('')")
        page.open("/")

        # merge 1 and 3 by ticking their cards (the first ticked keeps its number)
        page.click(".card[data-id='1'] input[data-pick]", wait=False)
        page.click(".card[data-id='3'] input[data-pick]", wait=False)
        page.click("button[data-action='merge-selected']")
        assert page.status().startswith("merged identities 1, 3 into identity 1")
        assert sorted(page.cards()) == [0, 1, 2, 4]

        # on 2's page: "not the same" as its nearest identity, side by side
        page.open("/identity/2")
        apart_from = tab.eval("Number(document.querySelector('.compare').dataset.other)")
        page.click(f".compare button[data-action='apart'][data-other='{apart_from}']")
        assert page.status().startswith(f"identities 2 and {apart_from} are kept apart")

        # move a sighting of 2 to identity 4
        moved = sighting_of(page, 2)
        tab.eval(f"document.querySelector(\"select[data-move='{moved}']\").value = '4'")
        page.click(f"button[data-action='move'][data-sighting='{moved}']")
        assert "4" in page.status()
        assert page.api("/api/identities/2")["n_sightings"] == 2

        # hide identity 0 (a bystander)
        page.open("/identity/0")
        page.click("button[data-action='hide']")
        page.open("/")
        assert 0 not in page.cards()
        page.click("#show-hidden")
        assert 0 in page.cards()

        # choose the cover of identity 4: a face that is not its cover now
        page.open("/identity/4")
        face = tab.eval("document.querySelector(\"button[data-action='cover']:not([disabled])\").dataset.face")
        page.click(f"button[data-action='cover'][data-face='{face}']")
        assert page.api("/api/identities/4")["cover_face"] == int(face)
        assert tab.eval("document.querySelector('.head img.cover').getAttribute('src')") == f"/face/{face}.jpg"

        # the clips play (byte ranges) on the identity page
        played = tab.eval(
            "Promise.all([...document.querySelectorAll('video.clip')].map(v => { v.muted = true;"
            " return v.play().then(() => new Promise(r => setTimeout(r, 300))).then(() => [v.currentTime, v.error]); }))",
            await_promise=True,
        )
        assert played and all(t > 0 and err is None for t, err in played)

        # undo the merge from the list of corrections
        page.open("/corrections")
        merge_n = tab.eval(
            "[...document.querySelectorAll('#corrections tr[data-n]')].find(r => r.textContent.includes('merge')).dataset.n"
        )
        page.click(f"button[data-action='undo'][data-n='{merge_n}']")
        assert page.status().startswith(f"undone {merge_n}")

        state = {i["id"]: (i["n_sightings"], i["hidden"], i["cover_face"]) for i in page.api("/api/identities")}
        assert sorted(state) == [0, 1, 2, 3, 4] and state[0][1] is True and state[4][2] == int(face)

        # reload: the same
        page.open("/?hidden=1")
        assert sorted(page.cards()) == [0, 1, 2, 3, 4]
        tab.screenshot(ARTIFACTS / "serve-people.png")
        page.collect()
    finally:
        tab.close()
        running.stop()

    # restart the server: a new token, the same state
    running = Running(out).start()
    tab = browser.new_tab(1280, 2000)
    again = Page(tab, running)
    try:
        tab.open(running.url)
        again._wait(None)
        assert sorted(again.cards()) == [1, 2, 3, 4]  # 0 is hidden
        after = {i["id"]: (i["n_sightings"], i["hidden"], i["cover_face"]) for i in again.api("/api/identities")}
        assert after == state
        again.open("/identity/4")
        assert tab.eval("document.querySelector('.head img.cover').getAttribute('src')") == f"/face/{face}.jpg"
        tab.screenshot(ARTIFACTS / "serve-identity.png")
        again.collect()
    finally:
        tab.close()
        running.stop()

    for p in (page, again):
        problems = [s for s in p.seen if s.startswith("problem")]
        assert problems == []
        outside = [
            s for s in p.seen if s.startswith("request") and not s.startswith((f"request {p.base}", "request data:"))
        ]
        assert outside == []

    # the same corrections on the command line give the same store
    typed = tmp_path / "typed"
    shutil.copytree(built, typed)
    runner = CliRunner()
    for argv in (
        ["merge", str(typed), "1", "3"],
        ["apart", str(typed), "2", str(apart_from)],
        ["move", str(typed), str(moved), "--to", "4"],
        ["hide", str(typed), "0"],
        ["cover", str(typed), "4", str(face)],
        ["undo", str(typed), str(merge_n)],
    ):
        result = runner.invoke(main, argv)
        assert result.exit_code == 0, (argv, result.output)
    assert store_state(out) == store_state(typed)


class _Attacker(BaseHTTPRequestHandler):
    """Another web application on this machine (another port of 127.0.0.1): it serves `page`."""

    page = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.page)))
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, format, *args) -> None:
        pass


def test_a_page_from_another_origin_cannot_drive_it(browser, built, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(built, out)
    running = Running(out).start()
    # the attacking page even knows the token; it posts a merge as a simple request (text/plain,
    # what a form could send) and as JSON (which needs a CORS grant, never given)
    target = f"http://127.0.0.1:{running.server.port}/api/corrections?token={running.server.token}"
    body = '{"kind":"merge","ids":[0,1]}'
    _Attacker.page = (
        "<!doctype html><script>Promise.allSettled(["
        f"fetch('{target}',{{method:'POST',mode:'no-cors',credentials:'include',"
        f"headers:{{'Content-Type':'text/plain'}},body:'{body}'}}),"
        f"fetch('{target}',{{method:'POST',credentials:'include',"
        f"headers:{{'Content-Type':'application/json'}},body:'{body}'}})"
        "]).then(r => document.title = r.map(x => x.status).join())</script>"
    ).encode()
    attacker = ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    tab = browser.new_tab()
    try:
        tab.open(running.url)  # the examiner's cookie is set in this browser
        tab.open(f"http://127.0.0.1:{attacker.server_address[1]}/")
        deadline = time.monotonic() + 10
        while not tab.eval("document.title") and time.monotonic() < deadline:
            time.sleep(0.05)
        # both fail in the page (the server's refusal, and its Cross-Origin-Resource-Policy); the first
        # one did reach the server, with the examiner's cookie: SameSite does not tell ports apart
        assert tab.eval("document.title") == "rejected,rejected"
    finally:
        tab.close()
        attacker.shutdown()
        attacker.server_close()
        running.stop()
    assert store_state(out)["corrections"] == []
