"""Screenshots of `vidcluster serve` for the README: the People view and one identity page.

    python -m benchmarks.serve_shots OUT [--dest docs] [--identity ID]

Serves OUT (a finished run; it is not changed) in this process and takes both pictures with
headless Chromium (benchmarks/cdp.py). The identity shown is the one with the most sightings, unless
--identity names one.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from vidcluster.serve import Running

from .cdp import Browser, find_chromium

ROOT = Path(__file__).resolve().parents[1]

SETTLED = (
    "new Promise(done => (function look() { const imgs = [...document.images];"
    " if (document.body.dataset.ready && imgs.every(i => i.complete)) setTimeout(done, 300);"
    " else setTimeout(look, 20); })())"
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--dest", type=Path, default=ROOT / "docs")
    ap.add_argument("--identity", type=int)
    args = ap.parse_args(argv)
    binary = find_chromium()
    if binary is None:
        raise SystemExit("no Chromium found")
    running = Running(args.out).start()
    browser = Browser(binary, Path(tempfile.mkdtemp(prefix="serve-shots-")))
    try:
        people = browser.new_tab(1280, 560)
        people.open(running.url)
        people.eval(SETTLED, await_promise=True)
        people.screenshot(args.dest / "serve-people.png", full_page=False)
        tab = browser.new_tab(1280, 1250)
        ident = args.identity
        if ident is None:
            ident = people.eval("Number(document.querySelector('.card').dataset.id)")
        tab.open(f"http://127.0.0.1:{running.server.port}/identity/{ident}")
        tab.eval(SETTLED, await_promise=True)
        time.sleep(0.5)  # the clips' first frames
        tab.screenshot(args.dest / "serve-identity.png", full_page=False)
        problems = people.problems() + tab.problems()
    finally:
        browser.close()
        running.stop()
    for name in ("serve-people.png", "serve-identity.png"):
        (args.dest / name).chmod(0o644)  # written while OUT's lock (and its umask 077) was held
    print(args.dest / "serve-people.png", args.dest / "serve-identity.png", problems or "no console problems")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
