"""`vidcluster serve OUT`: the case as a local, single-user web application (standard library only).

Who may talk to it:
- it listens on 127.0.0.1 only, never on another interface;
- every request carries the token made at start (`?token=`, or the cookie the first page sets:
  HttpOnly, SameSite=Strict), else 403; a page opened with the token in its address is sent on
  to the same address without it, so the token stays out of the history;
- `Host` must be 127.0.0.1:PORT or localhost:PORT (a DNS name rebound to 127.0.0.1 is refused);
  an `Origin` that is not this server's is refused on every request that carries one, and a body
  must be JSON; no CORS header is ever sent, so no other page can read an answer.
While it runs it holds OUT's lock: `run`, `recluster` or `merge` from another shell are refused
with one line. Ctrl-C or SIGTERM stop it; the static report under OUT/report is then refreshed
when corrections were made.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import secrets
import signal
import socket
import sys
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlsplit

from ..case.outdir import has_store, run_lock
from ..errors import ServeError, VidclusterError
from .api import BadRequest, NotFound, Review

HOST = "127.0.0.1"
MAX_BODY_BYTES = 64 * 1024
CHUNK = 256 * 1024
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
STATIC = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
_PAGE_PATHS = re.compile(r"/(?:identity/\d+|corrections)?")
# at most 18 digits: any such number fits SQLite's 64-bit integers (and Python's int() limit); longer is no id
_ID = r"[0-9]{1,18}"
_RANGE = re.compile(r"bytes=([0-9]{0,18})-([0-9]{0,18})")


def _asset(name: str) -> bytes:
    return resources.files(__package__).joinpath("static").joinpath(name).read_bytes()


PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>vidcluster review</title><link rel="stylesheet" href="/static/app.css"></head>
<body><nav id="nav"></nav><p id="status" role="status" aria-live="polite"></p><main id="main"><p>Loading\xe2\x80\xa6</p></main>
<script src="/static/app.js"></script></body></html>
"""


@dataclass(frozen=True)
class Stopped:
    """What `serve` did: corrections made while it ran and the report it refreshed (None: left as it was)."""

    corrections: int
    report: Path | None

    def line(self) -> str:
        if self.report is None:
            return "stopped; no corrections since the report was written, report unchanged"
        return f"stopped; report refreshed after {self.corrections} correction(s) -> {self.report}"


class _Refused(Exception):
    def __init__(self, status: HTTPStatus, text: str):
        super().__init__(text)
        self.status, self.text = status, text


class Server(ThreadingHTTPServer):
    """The HTTP server over one case; `url` is the address to open (with the token)."""

    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, case: Review, port: int, token: str):
        self.case, self.token = case, token
        try:
            super().__init__((HOST, port), _Handler)
        except OSError as exc:
            raise ServeError(f"--port {port}: cannot listen on {HOST} ({exc.strerror or exc})") from None
        self.port = int(self.server_address[1])
        self.hosts = {f"{HOST}:{self.port}", f"localhost:{self.port}"}
        self.origins = {f"http://{h}" for h in self.hosts}
        self.cookie = f"vidcluster_{self.port}"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/?token={self.token}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A browser that closes a connection is no error; anything else is reported as usual."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"
    server_version = "vidcluster"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the command prints one line; requests are not logged

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_HEAD(self) -> None:
        self._body_read, self.close_connection = False, True  # the answer's body is not read after HEAD
        self._refuse(HTTPStatus.METHOD_NOT_ALLOWED, "method not allowed")

    def _handle(self, method: str) -> None:
        self._body_read = False
        try:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            self._check_peer(method)
            from_query = self._check_token(query)
            if from_query and method == "GET" and _PAGE_PATHS.fullmatch(url.path):
                self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", {"Location": url.path, **self._set_cookie()})
                return
            self._route(method, url.path)
        except _Refused as r:
            self._refuse(r.status, r.text)
        except BadRequest as exc:
            self._refuse(HTTPStatus.BAD_REQUEST, str(exc))
        except NotFound as exc:
            self._refuse(HTTPStatus.NOT_FOUND, str(exc))
        except VidclusterError as exc:  # a workflow refusal (unknown sighting, nothing left ...): bad input
            self._refuse(HTTPStatus.BAD_REQUEST, str(exc))
        except ConnectionError:
            pass  # the browser went away (a video that stopped loading)
        except Exception as exc:  # a bug: one line to the page, the traceback on stderr (handle_error)
            self._refuse(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {type(exc).__name__}: {exc}")
            raise

    # -- who may ask -----------------------------------------------------------------------------
    def _check_peer(self, method: str) -> None:
        if self.headers.get("Host", "").lower() not in self.server.hosts:
            raise _Refused(HTTPStatus.FORBIDDEN, "forbidden: unknown Host")
        origin = self.headers.get("Origin")
        if origin is not None and origin not in self.server.origins:
            raise _Refused(HTTPStatus.FORBIDDEN, "forbidden: request from another origin")
        if method == "POST" and self.headers.get_content_type() != "application/json":
            raise _Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "body: send application/json")

    def _check_token(self, query: dict[str, list[str]]) -> bool:
        """True when the token came in the query; _Refused when it came nowhere."""
        token = self.server.token.encode()
        given = query.get("token", [])
        if given:
            if hmac.compare_digest(given[-1].encode(), token):
                return True
            raise _Refused(HTTPStatus.FORBIDDEN, "forbidden: wrong token")
        try:
            cookie = SimpleCookie(self.headers.get("Cookie", ""))
        except CookieError:
            cookie = SimpleCookie()
        morsel = cookie.get(self.server.cookie)
        if morsel is not None and hmac.compare_digest(morsel.value.encode(), token):
            return False
        raise _Refused(HTTPStatus.FORBIDDEN, "forbidden: open the address `vidcluster serve` printed (with its token)")

    def _set_cookie(self) -> dict[str, str]:
        return {"Set-Cookie": f"{self.server.cookie}={self.server.token}; Path=/; HttpOnly; SameSite=Strict"}

    # -- what it answers ----------------------------------------------------------------------------
    def _route(self, method: str, path: str) -> None:
        case = self.server.case
        if method == "POST":
            body = self._json_body()
            if path == "/api/corrections":
                return self._json(case.correct(body))
            if path == "/api/report":
                index = case.refresh_report()
                return self._json({"done": f"report refreshed: {index}", "report": str(index)})
            raise NotFound(f"no {path}")
        if _PAGE_PATHS.fullmatch(path):
            return self._send(HTTPStatus.OK, PAGE, "text/html; charset=utf-8", {"Content-Security-Policy": CSP})
        if path == "/api/identities":
            return self._json(case.identities())
        if m := re.fullmatch(rf"/api/identities/(-?{_ID})", path):
            return self._json(case.identity(int(m.group(1))))
        if path == "/api/corrections":
            return self._json(case.corrections())
        if (m := re.fullmatch(r"/static/([a-z]+\.[a-z]+)", path)) and m.group(1) in STATIC:
            return self._send(HTTPStatus.OK, _asset(m.group(1)), STATIC[m.group(1)])
        if m := re.fullmatch(rf"/(face|snap)/({_ID})\.jpg", path):
            get = case.face_jpeg if m.group(1) == "face" else case.snapshot_jpeg
            jpeg = get(int(m.group(2)))
            if jpeg is None:
                raise NotFound(f"no {m.group(1)} {m.group(2)}")
            return self._send(HTTPStatus.OK, jpeg, "image/jpeg", {"Cache-Control": "private, max-age=3600"})
        if m := re.fullmatch(r"/clips/([\w.-]+)", path):
            clip = case.clip_file(m.group(1))
            if clip is None:
                raise NotFound(f"no clip {m.group(1)}")
            return self._file(clip, "video/mp4")
        if path == "/favicon.ico":
            return self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
        raise NotFound(f"no {path}")

    def _drain(self) -> None:
        """Read what is left of a refused request's body (unread, it would reset the connection)."""
        if self._body_read:
            return
        self._body_read = True
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if 0 <= length <= MAX_BODY_BYTES:
            self.rfile.read(length)
        else:
            self.close_connection = True

    def _json_body(self) -> Any:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise BadRequest("body: Content-Length missing") from None
        if length < 0 or length > MAX_BODY_BYTES:
            self._body_read, self.close_connection = True, True  # not read: the connection ends with the answer
            raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body: larger than {MAX_BODY_BYTES} bytes")
        raw = self.rfile.read(length)
        self._body_read = True
        try:
            return json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except (ValueError, RecursionError):  # ValueError: also an int of more digits than Python reads
            raise BadRequest("body: not JSON") from None

    def _json(self, value: Any) -> None:
        self._send(HTTPStatus.OK, json.dumps(value, ensure_ascii=False).encode("utf-8"), "application/json")

    def _refuse(self, status: HTTPStatus, text: str) -> None:
        self._drain()
        self._send(
            status, (text.splitlines()[0] if text else status.phrase).encode() + b"\n", "text/plain; charset=utf-8"
        )

    def _headers(self, status: HTTPStatus, ctype: str, length: int, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        headers = {
            "Content-Type": ctype,
            "Content-Length": str(length),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",
            "Cross-Origin-Resource-Policy": "same-origin",
            **(extra or {}),
        }
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()

    def _send(self, status: HTTPStatus, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        self._headers(status, ctype, len(body), extra)
        self.wfile.write(body)

    def _file(self, path: Path, ctype: str) -> None:
        """A file, whole or the one byte range asked for (what <video> asks for). It is opened first:
        a report refreshed meanwhile may take it away, but not once it is open."""
        try:
            f = path.open("rb")
        except OSError:
            raise NotFound(f"no clip {path.name}") from None
        with f:
            self._send_file(f, ctype)

    def _send_file(self, f: BinaryIO, ctype: str) -> None:
        size = os.fstat(f.fileno()).st_size
        start, end = 0, size - 1
        status = HTTPStatus.OK
        extra = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600"}
        asked = self.headers.get("Range")
        if asked is not None:
            m = _RANGE.fullmatch(asked.strip())
            if m is None or m.group(1) == m.group(2) == "":
                raise _Refused(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, "Range: one byte range, bytes=A-B")
            if m.group(1):
                start, end = int(m.group(1)), min(int(m.group(2) or size - 1), size - 1)
            else:  # the last N bytes
                start = max(0, size - int(m.group(2)))
            if start >= size or start > end:
                self._headers(
                    HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, "text/plain", 0, {"Content-Range": f"bytes */{size}"}
                )
                return
            status = HTTPStatus.PARTIAL_CONTENT
            extra["Content-Range"] = f"bytes {start}-{end}/{size}"
        self._headers(status, ctype, end - start + 1, extra)
        f.seek(start)
        left = end - start + 1
        while left > 0:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                break
            self.wfile.write(chunk)
            left -= len(chunk)


# -- lifecycle ---------------------------------------------------------------------------------
class Running:
    """A started server on OUT: the lock held, the store open, listening. `stop()` ends it all."""

    def __init__(self, out: str | Path, port: int = 0, token: str | None = None):
        out = Path(out)
        if not 0 <= int(port) <= 65535:
            raise ServeError(f"--port {port}: expected 0 (any free port) to 65535")
        if not has_store(out):
            raise ServeError(f"{out}: no vidcluster store here (run `vidcluster run INPUT --out {out}` first)")
        self.out = out
        self._stack = ExitStack()
        try:
            self._stack.enter_context(run_lock(out))
            self.case = Review(out)
            self._stack.callback(self.case.close)
            self.server = Server(self.case, int(port), token or secrets.token_urlsafe(24))
            self._stack.callback(self.server.server_close)
        except BaseException:
            self._stack.close()
            raise
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> Running:
        """Serve from a background thread (tests); `serve_forever` serves from this one."""
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name="vidcluster-serve", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> Stopped:
        """Stop serving, refresh the report when corrections were made, let go of OUT."""
        try:
            if self._thread is not None:
                self.server.shutdown()
                self._thread.join()
            with self.case.lock:  # waits for a correction in flight
                changes = self.case.changes
                report = self.case.refresh_report() if changes else None
            return Stopped(changes, report)
        finally:
            self._stack.close()


class _Stop(Exception):
    """SIGTERM arrived."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def serve(out: str | Path, port: int = 0, ready: Callable[[str], None] | None = None) -> Stopped:
    """Serve OUT until Ctrl-C or SIGTERM; `ready(url)` is called once it listens. Returns what it did."""
    running = Running(out, port)
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        if ready is not None:
            ready(running.url)
        running.server.serve_forever()
    except (KeyboardInterrupt, _Stop):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        stopped = running.stop()
    return stopped


def free_port() -> int:
    """A port on 127.0.0.1 nobody listens on right now (for tests)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])
