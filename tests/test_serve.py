"""`vidcluster serve`: who may talk to it, the JSON API, corrections through the command line's
functions, the lock it holds, and how it stops. Over HTTP, on a small synthetic case
(benchmarks/synth_store.py: five people, three sightings each, real clips); the browser side is in
tests/test_serve_browser.py."""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchmarks.synth_store import write_case
from vidcluster.case.outdir import LOCK_NAME, STALE_MARKER, run_lock, store_path
from vidcluster.case.store import Store
from vidcluster.cli import main
from vidcluster.serve import Running
from vidcluster.serve.app import CSP, free_port


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return write_case(tmp_path_factory.mktemp("case") / "out", people=5, sightings=3)


@pytest.fixture
def case(built, tmp_path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(built, out)
    return out


@pytest.fixture
def server(case):
    running = Running(case).start()
    yield running
    if running.server.socket.fileno() != -1:
        running.stop()


class Client:
    """Requests to one running server, with or without its token."""

    def __init__(self, running: Running):
        self.port, self.token = running.server.port, running.server.token

    def request(self, method: str, path: str, body=None, headers=None, token: bool = True, raw: bytes | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        if token:
            path += ("&" if "?" in path else "?") + f"token={self.token}"
        hdrs = {"Host": f"127.0.0.1:{self.port}", **(headers or {})}
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        payload = r.read()
        conn.close()
        return r.status, dict(r.getheaders()), payload

    def get(self, path: str, **kw):
        return self.request("GET", path, **kw)

    def post(self, body, path: str = "/api/corrections", **kw):
        return self.request("POST", path, body=body, **kw)

    def json(self, path: str):
        status, _, payload = self.get(path)
        assert status == 200, payload
        return json.loads(payload)


@pytest.fixture
def client(server) -> Client:
    return Client(server)


def store_state(out: Path) -> dict:
    """What corrections leave in the store: the assignment, and every correction without its time."""
    st = Store.open(store_path(out))
    try:
        corrections = [(c.kind.value, tuple(c.identities), tuple(c.tracks), c.label, c.ref) for c in st.corrections()]
        return {"assignment": st.assignment(), "corrections": corrections, "undone": sorted(st.undone_corrections())}
    finally:
        st.close()


# -- who may ask --------------------------------------------------------------------------------
def test_listens_on_loopback_only_and_prints_its_address(server):
    assert server.server.server_address[0] == "127.0.0.1"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/\?token=[\w-]{20,}", server.url)


def test_without_the_token_everything_is_403(client):
    for path in ("/", "/identity/0", "/api/identities", "/api/corrections", "/face/1.jpg", "/static/app.js"):
        status, _, payload = client.get(path, token=False)
        assert status == 403, path
        assert payload.count(b"\n") == 1 and b"Traceback" not in payload
    status, _, _ = client.get("/api/identities?token=wrong", token=False)
    assert status == 403
    status, _, _ = client.post({"kind": "merge", "ids": [0, 1]}, token=False)
    assert status == 403


def test_the_first_page_sets_a_strict_cookie_and_drops_the_token_from_the_address(client):
    status, headers, _ = client.get("/identity/2")
    assert status == 303 and headers["Location"] == "/identity/2"
    cookie = headers["Set-Cookie"]
    assert f"={client.token};" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    jar = cookie.split(";")[0]
    status, headers, page = client.get("/identity/2", token=False, headers={"Cookie": jar})
    assert status == 200 and headers["Content-Security-Policy"] == CSP
    assert b'src="/static/app.js"' in page
    status, _, _ = client.get("/api/identities", token=False, headers={"Cookie": jar.split("=")[0] + "=forged"})
    assert status == 403


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1:1", "192.168.1.5:{port}", ""])
def test_a_foreign_host_is_refused(client, host):
    status, _, _ = client.get("/api/identities", headers={"Host": host.format(port=client.port)})
    assert status == 403


def test_localhost_by_name_is_served(client):
    status, _, _ = client.get("/api/identities", headers={"Host": f"localhost:{client.port}"})
    assert status == 200


def test_a_hostile_origin_is_refused_and_changes_nothing(client, case):
    before = client.json("/api/corrections")
    for origin in ("http://evil.example", "null", f"http://127.0.0.1:{client.port}.evil.example"):
        status, headers, _ = client.post({"kind": "merge", "ids": [0, 1]}, headers={"Origin": origin})
        assert status == 403, origin
        assert not any(h.lower().startswith("access-control-") for h in headers)
        status, _, _ = client.get("/api/identities", headers={"Origin": origin})
        assert status == 403
    assert client.json("/api/corrections") == before == []
    status, _, _ = client.post(
        {"kind": "name", "id": 0, "label": "x"}, headers={"Origin": f"http://127.0.0.1:{client.port}"}
    )
    assert status == 200  # its own origin is fine


def test_a_body_that_is_not_json_is_refused(client):
    status, _, payload = client.request(
        "POST",
        "/api/corrections",
        raw=b"kind=merge&ids=0",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 415 and payload.startswith(b"body:")
    status, _, payload = client.request("POST", "/api/corrections", raw=b"{not json")
    assert status == 400 and payload == b"body: not JSON\n"


def test_no_answer_carries_cors_headers(client):
    for path in ("/", "/api/identities", "/api/identities/0", "/static/app.js"):
        _, headers, _ = client.get(path, headers={"Origin": f"http://127.0.0.1:{client.port}"})
        assert not any(h.lower().startswith("access-control-") for h in headers), path


def test_the_page_and_its_assets_name_nothing_outside(client):
    for path in ("/static/app.js", "/static/app.css"):
        status, headers, body = client.get(path)
        assert status == 200 and headers["X-Content-Type-Options"] == "nosniff"
        assert not re.search(rb"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import|url\(", body), path
    assert "'unsafe-inline'" not in CSP and "default-src 'none'" in CSP


# -- the API -----------------------------------------------------------------------------------------
def test_identities_are_those_of_identities_json(client, case):
    listed = client.json("/api/identities")
    static = json.loads((case / "report" / "identities.json").read_text())
    assert [i["id"] for i in listed] == [i["id"] for i in static]
    for a, b in zip(listed, static, strict=True):
        for key in ("n_faces", "n_sightings", "cameras", "first_seen", "last_seen", "nearest", "doubt", "spread"):
            assert a[key] == b[key], key
        assert a["cover_face"] is not None and a["hidden"] is False


def test_one_identity_has_its_sightings_and_nearest(client):
    one = client.json("/api/identities/0")
    assert len(one["sightings"]) == one["n_sightings"] == 3
    for s in one["sightings"]:
        assert s["faces"] and s["snapshot"] == f"/snap/{s['track_id']}.jpg" and s["clip"].startswith("/clips/")
    assert len(one["nearest"]) == 3 and all(n["faces"] and n["distance"] > 1 for n in one["nearest"])
    status, _, payload = client.get("/api/identities/99")
    assert status == 404 and payload == b"no identity 99\n"


def test_images_and_snapshots_come_from_the_store(client):
    one = client.json("/api/identities/0")
    status, headers, jpeg = client.get(f"/face/{one['cover_face']}.jpg")
    assert status == 200 and headers["Content-Type"] == "image/jpeg" and jpeg[:2] == b"\xff\xd8"
    status, _, jpeg = client.get(one["sightings"][0]["snapshot"])
    assert status == 200 and jpeg[:2] == b"\xff\xd8"
    assert client.get("/face/99999.jpg")[0] == 404


def test_clips_answer_byte_ranges(client, case):
    clip = client.json("/api/identities/0")["sightings"][0]["clip"]
    whole = (case / "report" / clip.lstrip("/")).read_bytes()
    status, headers, body = client.get(clip)
    assert status == 200 and body == whole and headers["Accept-Ranges"] == "bytes"
    status, headers, body = client.get(clip, headers={"Range": "bytes=10-99"})
    assert status == 206 and body == whole[10:100] and headers["Content-Range"] == f"bytes 10-99/{len(whole)}"
    status, _, body = client.get(clip, headers={"Range": "bytes=-20"})
    assert status == 206 and body == whole[-20:]
    status, _, body = client.get(clip, headers={"Range": f"bytes={len(whole) - 5}-"})
    assert status == 206 and body == whole[-5:]
    status, headers, _ = client.get(clip, headers={"Range": f"bytes={len(whole)}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(whole)}"
    for bad in ("/clips/..%2Fvidcluster.db", "/clips/clip-1-00.mp4", "/clips/../vidcluster.db"):
        assert client.get(bad)[0] == 404, bad


BAD_BODIES = [
    ([1, 2], "body:"),
    ({}, "kind:"),
    ({"kind": "explode"}, "kind:"),
    ({"kind": "merge", "ids": 3}, "ids:"),
    ({"kind": "merge", "ids": [0]}, "ids:"),
    ({"kind": "merge", "ids": [0, "1"]}, "ids:"),
    ({"kind": "merge", "ids": [0, 77]}, "ids:"),
    ({"kind": "merge", "ids": [0, True]}, "ids:"),
    ({"kind": "reject", "id": "0", "sighting": 1}, "id:"),
    ({"kind": "reject", "id": 0}, "sighting:"),
    ({"kind": "reject", "id": 0, "sighting": 99999}, "sighting"),
    ({"kind": "name", "id": 0}, "label:"),
    ({"kind": "name", "id": 0, "label": "   "}, "label:"),
    ({"kind": "name", "id": 0, "label": "x" * 201}, "label"),
    ({"kind": "note", "id": 42, "text": "hi"}, "id:"),
    ({"kind": "confirm", "id": 0, "examiner": 5}, "examiner:"),
    ({"kind": "undo", "n": 1}, "n"),
    ({"kind": "undo"}, "n:"),
    ({"kind": "move", "sighting": 1, "to": 0}, "to:"),  # already there
    ({"kind": "move", "sighting": 99999, "to": 1}, "sighting:"),
    ({"kind": "move", "sighting": 1, "to": 42}, "to:"),
    ({"kind": "move", "sighting": 1, "to": "new"}, "to:"),
    ({"kind": "apart", "ids": [0, 1, 2]}, "ids:"),
    ({"kind": "apart", "ids": [3, 3]}, "ids:"),
    ({"kind": "hide", "id": 8}, "id:"),
    ({"kind": "cover", "id": 0}, "face:"),
    ({"kind": "cover", "id": 0, "face": 99999}, "face:"),
    ({"kind": "cover", "id": 0, "face": 4}, "face:"),  # a face of identity 1
]


@pytest.mark.parametrize("body, field", BAD_BODIES)
def test_bad_input_is_one_line_naming_the_field_and_changes_nothing(client, case, body, field):
    before = store_state(case)
    status, headers, payload = client.post(body)
    assert status == 400, payload
    text = payload.decode()
    assert text.endswith("\n") and text.count("\n") == 1 and "Traceback" not in text
    assert text.startswith(field) or field in text.split(":")[0], text
    assert headers["Content-Type"].startswith("text/plain")
    assert store_state(case) == before
    assert not (case / "report" / STALE_MARKER).exists()


def test_a_correction_answers_the_new_state_without_rewriting_the_static_report(client, case):
    index = case / "report" / "identities.json"
    before = index.read_bytes()
    res = json.loads(client.post({"kind": "merge", "ids": [3, 1]})[2])
    assert res["done"].startswith("merged identities 3, 1 into identity 3") and "->" not in res["done"]
    assert res["identity"] == 3
    merged = next(i for i in res["identities"] if i["id"] == 3)
    assert merged["n_sightings"] == 6 and 1 not in {i["id"] for i in res["identities"]}
    assert client.json("/api/identities") == res["identities"]
    assert index.read_bytes() == before  # the static report is left for the end
    listed = client.json("/api/corrections")
    assert [(c["n"], c["kind"], c["undone_utc"]) for c in listed] == [(1, "merge", None)]
    res = json.loads(client.post({"kind": "undo", "n": 1})[2])
    assert {i["id"] for i in res["identities"]} == {0, 1, 2, 3, 4}
    assert client.json("/api/corrections")[0]["undone_utc"] is not None


def test_corrections_by_api_equal_those_by_command_line(built, tmp_path, client, case):
    steps = [
        ({"kind": "merge", "ids": [2, 4]}, ["merge", "{out}", "2", "4"]),
        ({"kind": "name", "id": 2, "label": "man in red"}, ["name", "{out}", "2", "man in red"]),
        ({"kind": "reject", "id": 0, "sighting": 1}, ["reject", "{out}", "0", "sighting:1"]),
        ({"kind": "note", "id": 3, "text": "seen at the till"}, ["note", "{out}", "3", "seen at the till"]),
        ({"kind": "confirm", "id": 3, "examiner": "J. Doe"}, ["confirm", "{out}", "3", "--examiner", "J. Doe"]),
        ({"kind": "move", "sighting": 5, "to": 0}, ["move", "{out}", "5", "--to", "0"]),
        ({"kind": "move", "sighting": 6, "to": None}, ["move", "{out}", "6", "--to", "new"]),
        ({"kind": "apart", "ids": [1, 3]}, ["apart", "{out}", "1", "3"]),
        ({"kind": "hide", "id": 3}, ["hide", "{out}", "3"]),
        ({"kind": "cover", "id": 0, "face": None}, ["cover", "{out}", "0", "{face}"]),  # its last face, found below
        ({"kind": "undo", "n": 1}, ["undo", "{out}", "1"]),
    ]
    by_hand = tmp_path / "by-hand"
    shutil.copytree(built, by_hand)
    runner = CliRunner()
    for body, argv in steps:
        if body.get("face", 0) is None:
            body["face"] = client.json("/api/identities/0")["sightings"][-1]["faces"][-1]["id"]
        status, _, payload = client.post(body)
        assert status == 200, payload
        result = runner.invoke(main, [a.format(out=by_hand, face=body.get("face")) for a in argv])
        assert result.exit_code == 0, result.output
    assert store_state(case) == store_state(by_hand)


# -- the lock, the end -------------------------------------------------------------------------------
def test_other_commands_are_refused_while_it_runs(server, case):
    for argv in (["merge", str(case), "0", "1"], ["recluster", str(case)], ["hide", str(case), "2"]):
        result = CliRunner().invoke(main, argv)
        assert result.exit_code == 2, argv
        assert result.stderr.count("\n") == 1 and "vidcluster serve" in result.stderr, result.stderr
    assert store_state(case)["corrections"] == []
    server.stop()
    assert not (case / LOCK_NAME).exists()
    with run_lock(case):
        pass


def test_stopping_refreshes_the_report_only_after_corrections(built, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(built, out)
    report = out / "report" / "identities.json"
    stamp = report.stat().st_mtime_ns
    stopped = Running(out).start().stop()
    assert stopped.report is None and report.stat().st_mtime_ns == stamp and "unchanged" in stopped.line()
    running = Running(out).start()
    assert Client(running).post({"kind": "name", "id": 1, "label": "guard"})[0] == 200
    assert "vidcluster serve" in (out / "report" / STALE_MARKER).read_text()  # should it be killed now
    stopped = running.stop()
    assert not (out / "report" / STALE_MARKER).exists()
    assert stopped.corrections == 1 and stopped.report == out / "report" / "index.html"
    labels = {i["id"]: i["label"] for i in json.loads(report.read_text())}
    assert labels[1] == "guard"
    result = CliRunner().invoke(main, ["verify", str(out), "-q"])
    assert result.exit_code == 0, result.output  # store, audit log and report agree after the session


def test_the_report_button_rewrites_the_static_report(client, case):
    client.post({"kind": "name", "id": 4, "label": "cleaner"})
    status, _, payload = client.post({}, path="/api/report")
    assert status == 200 and json.loads(payload)["report"].endswith("index.html")
    assert "cleaner" in (case / "report" / "identity-4.html").read_text()


@pytest.mark.parametrize(
    "argv, text",
    [
        (["--port", "70000"], "--port 70000"),
        (["--port", "-1"], "--port -1"),
    ],
)
def test_bad_port_is_one_line(case, argv, text):
    result = CliRunner().invoke(main, ["serve", str(case), *argv])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and text in result.stderr


def test_a_port_in_use_and_an_out_without_store_are_one_line(case, tmp_path):
    running = Running(case).start()
    try:
        other = tmp_path / "other"
        shutil.copytree(case, other, ignore=shutil.ignore_patterns(LOCK_NAME))
        result = CliRunner().invoke(main, ["serve", str(other), "--port", str(running.server.port)])
        assert result.exit_code == 2 and f"--port {running.server.port}: cannot listen" in result.stderr
    finally:
        running.stop()
    result = CliRunner().invoke(main, ["serve", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "no vidcluster store" in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_command_prints_one_line_and_stops_cleanly_on_a_signal(case, sig, monkeypatch):
    port, token = free_port(), "t0ken-for-this-test-only"
    monkeypatch.setattr(secrets, "token_urlsafe", lambda n: token)
    answers = []

    def examiner() -> None:  # a correction, then the signal, as from another terminal
        for _ in range(200):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("POST", f"/api/corrections?token={token}", body=b'{"kind": "merge", "ids": [0, 2]}',
                             headers={"Content-Type": "application/json"})  # fmt: skip
                answers.append(conn.getresponse().status)
                conn.close()
                break
            except ConnectionRefusedError:
                time.sleep(0.02)
        os.kill(os.getpid(), sig)

    helper = threading.Thread(target=examiner)
    helper.start()
    result = CliRunner().invoke(main, ["serve", str(case), "--port", str(port)])
    helper.join()
    assert answers == [200]
    assert result.exit_code == 0, result.output
    assert result.stdout == f"http://127.0.0.1:{port}/?token={token}\n"  # one line, and nothing after it
    assert "report refreshed after 1 correction(s)" in result.stderr and "Traceback" not in result.stderr
    merged = next(i for i in json.loads((case / "report" / "identities.json").read_text()) if i["id"] == 0)
    assert merged["n_sightings"] == 6
    assert not (case / LOCK_NAME).exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL or sig == signal.SIGINT


def test_a_refused_request_leaves_the_connection_usable(server):
    """A refusal reads the body it refuses, so the next request on the same connection is answered."""
    conn = http.client.HTTPConnection("127.0.0.1", server.server.port, timeout=10)
    host = {"Host": f"127.0.0.1:{server.server.port}"}
    conn.request("POST", f"/api/corrections?token={server.server.token}", body=b'{"kind": "merge", "ids": [0, 1]}',
                 headers={**host, "Content-Type": "application/json", "Origin": "http://evil.example"})  # fmt: skip
    first = conn.getresponse()
    assert first.status == 403 and first.read() == b"forbidden: request from another origin\n"
    conn.request("GET", f"/api/corrections?token={server.server.token}", headers=host)
    second = conn.getresponse()
    assert second.status == 200 and json.loads(second.read()) == []
    conn.close()


HUGE = "9" * 5000  # more digits than Python turns into an int
TOO_BIG = "9" * 30  # an int, but wider than SQLite's 64 bits


@pytest.mark.parametrize(
    "path, headers, status",
    [
        (f"/face/{TOO_BIG}.jpg", {}, 404),
        (f"/snap/{TOO_BIG}.jpg", {}, 404),
        (f"/api/identities/{HUGE}", {}, 404),
        ("CLIP", {"Range": f"bytes={HUGE}-"}, 416),
    ],
)
def test_numbers_too_large_in_the_address_are_one_line_not_a_500(client, path, headers, status):
    if path == "CLIP":
        path = client.json("/api/identities/0")["sightings"][0]["clip"]
    got, _, payload = client.get(path, headers=headers)
    assert got == status, payload
    assert payload.count(b"\n") == 1 and b"internal error" not in payload


@pytest.mark.parametrize(
    "raw, start",
    [
        (f'{{"kind": "cover", "id": 0, "face": {TOO_BIG}}}'.encode(), b"face:"),
        (f'{{"kind": "undo", "n": {TOO_BIG}}}'.encode(), b"n:"),
        (f'{{"kind": "name", "id": {HUGE}, "label": "x"}}'.encode(), b"body:"),
        (b"[" * 20000 + b"]" * 20000, b"body:"),
    ],
)
def test_bodies_python_or_sqlite_cannot_hold_are_one_line_400(client, case, raw, start):
    before = store_state(case)
    status, _, payload = client.request("POST", "/api/corrections", raw=raw)
    assert status == 400 and payload.startswith(start) and payload.count(b"\n") == 1, payload
    assert store_state(case) == before


def test_head_is_refused_with_405_and_the_server_goes_on(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.server.port, timeout=10)
    conn.request("HEAD", "/", headers={"Host": f"127.0.0.1:{server.server.port}"})
    r = conn.getresponse()
    assert r.status == 405
    r.read()
    conn.close()
    assert Client(server).json("/api/corrections") == []


def test_a_clip_that_goes_away_before_it_is_read_is_a_404(client, server, case, monkeypatch):
    """The report refreshed between the clip's lookup and its reading (its folder swapped) is no 500."""
    clip = client.json("/api/identities/0")["sightings"][0]["clip"]
    monkeypatch.setattr(server.case, "clip_file", lambda name: case / "report" / "clips" / "gone.mp4")
    status, _, payload = client.get(clip)
    assert status == 404 and payload.count(b"\n") == 1 and b"internal error" not in payload, payload
