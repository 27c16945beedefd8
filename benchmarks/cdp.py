"""A minimal Chrome DevTools Protocol client over --remote-debugging-pipe (no extra packages).

Chromium reads JSON commands, each ended by a NUL byte, from file descriptor 3 and writes
responses and events to descriptor 4. One headless browser serves a whole test module: each
`Tab` records the console messages, exceptions, log entries and network requests of its page.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class CdpError(RuntimeError):
    pass


def _above_4(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class Browser:
    """A headless Chromium driven through a pipe; `close()` ends it."""

    def __init__(self, binary: str, profile: Path, timeout_s: float = 30.0):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # move the child's ends above 4, so that putting them on 3 and 4 cannot overwrite one with the other
        to_browser_r, from_browser_w = (_above_4(fd) for fd in (to_browser_r, from_browser_w))
        args = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--mute-audio",
            "--autoplay-policy=no-user-gesture-required",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        # descriptors 3 and 4 are where Chromium expects the pipe
        script = f'exec "$@" 3<&{to_browser_r} 4>&{from_browser_w}'
        self.proc = subprocess.Popen(
            ["bash", "-c", script, "bash", *args],
            pass_fds=(to_browser_r, from_browser_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": "disabled:"},
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.timeout_s = timeout_s
        self._buf = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    # -- wire ----------------------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise CdpError("no answer from Chromium in time")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise CdpError("Chromium closed the pipe")
            self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\0")
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict[str, Any]:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise CdpError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, session: str, since: int, timeout_s: float | None = None) -> dict[str, Any]:
        """The first event `method` of `session` after index `since` of self.events (reading on as needed)."""
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        k = since
        while True:
            while k < len(self.events):
                ev = self.events[k]
                k += 1
                if ev.get("method") == method and ev.get("sessionId") == session:
                    return ev
            self.events.append(self._read_message(deadline))

    def pump(self, wait_s: float) -> None:
        """Read the events that arrive within `wait_s` seconds (answers to no command of ours)."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                self.events.append(self._read_message(deadline))
            except CdpError:
                return

    def new_tab(self, width: int = 1200, height: int = 900) -> Tab:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=session)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session,
        )
        return Tab(self, session, target)

    def close(self) -> None:
        with contextlib.suppress(CdpError, OSError):
            self.send("Browser.close")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


class Tab:
    """One page of the browser with what it logged and requested since `open`."""

    def __init__(self, browser: Browser, session: str, target: str):
        self.b, self.session, self.target = browser, session, target
        self.start = len(browser.events)

    def call(self, method: str, params: dict | None = None) -> dict[str, Any]:
        return self.b.send(method, params, self.session)

    def _mine(self) -> list[dict[str, Any]]:
        return [ev for ev in self.b.events[self.start :] if ev.get("sessionId") == self.session]

    def open(self, url: str) -> None:
        """Navigate and wait for the load event; the page's record starts afresh."""
        self.start = len(self.b.events)
        self.call("Page.navigate", {"url": url})
        self.b.wait_for("Page.loadEventFired", self.session, self.start)

    def click(self, x: float, y: float) -> None:
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def wait_navigated(self, since: int) -> None:
        """Wait until a click led somewhere: a new document loaded or a jump within this one."""
        deadline = time.monotonic() + self.b.timeout_s
        while time.monotonic() < deadline:
            methods = {ev.get("method") for ev in self.b.events[since:] if ev.get("sessionId") == self.session}
            if methods & {"Page.loadEventFired", "Page.navigatedWithinDocument"}:
                return
            self.b.pump(0.05)
        raise CdpError("the click did not navigate")

    def eval(self, expression: str, await_promise: bool = False) -> Any:
        result = self.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": await_promise}
        )
        if "exceptionDetails" in result:
            raise CdpError(f"{expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions and error log entries (CSP violations among them)."""
        out = []
        for ev in self._mine():
            m, p = ev.get("method"), ev.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
                out.append(f"console {p['type']}: {[a.get('value') for a in p.get('args', [])]}")
            elif m == "Runtime.exceptionThrown":
                out.append(f"exception: {p.get('exceptionDetails', {}).get('text')}")
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") in ("error", "warning"):
                out.append(f"log {p['entry']['level']}: {p['entry'].get('text')}")
        return out

    def requests(self) -> list[str]:
        return [
            ev["params"]["request"]["url"] for ev in self._mine() if ev.get("method") == "Network.requestWillBeSent"
        ]

    def failed_requests(self) -> list[str]:
        return [
            str(ev["params"].get("errorText")) for ev in self._mine() if ev.get("method") == "Network.loadingFailed"
        ]

    def screenshot(self, target: Path, full_page: bool = True) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.call("Page.getLayoutMetrics")["cssContentSize"]
            params.update(
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 6000), "scale": 1},
            )
        data = self.call("Page.captureScreenshot", params)["data"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(base64.b64decode(data))
        return target

    def close(self) -> None:
        self.b.send("Target.closeTarget", {"targetId": self.target})
