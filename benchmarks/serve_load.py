"""What reviewing a large case in `vidcluster serve` costs: page load time and server memory.

    python -m benchmarks.serve_load [--people 500] [--sightings 3] [--keep DIR]

Writes a synthetic case (benchmarks/synth_store.py, no clips) of N people, starts
`python -m vidcluster serve` on it as its own process, and measures with headless Chromium
(benchmarks/cdp.py): the People view from navigation until it is drawn with every image in the
window decoded (covers further down load as they are scrolled to) (cold: the first
request reads the store; warm: a reload), an identity page, the answer to one merge (regrouping
included), and the server's resident memory (VmRSS, and its peak VmHWM) after each step.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .cdp import Browser, find_chromium
from .synth_store import write_case

ROOT = Path(__file__).resolve().parents[1]

DRAWN = (
    "new Promise(done => { const t0 = performance.now(); (function look() {"
    " const imgs = [...document.images].filter(i => i.getBoundingClientRect().top < innerHeight);"
    " const ready = document.body.dataset.ready;"
    " if (ready && imgs.length && imgs.every(i => i.complete && i.naturalWidth)) done([performance.now(), imgs.length]);"
    " else setTimeout(look, 10); })(); })"
)


def _memory_mb(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return fields


def _load(tab, url: str) -> tuple[float, int]:
    """Seconds from navigation until the view is drawn with every image decoded; number of images."""
    t0 = time.perf_counter()
    tab.open(url)
    _, n = tab.eval(DRAWN, await_promise=True)
    return round(time.perf_counter() - t0, 3), n


def measure(out: Path, people: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidcluster", "serve", str(out)], stdout=subprocess.PIPE, text=True, env=env
    )
    browser = None
    try:
        url = proc.stdout.readline().strip()
        base = url.split("?")[0]
        result: dict = {"people": people, "server_started": _memory_mb(proc.pid)}
        binary = find_chromium()
        if binary is None:
            raise SystemExit("no Chromium found")
        browser = Browser(binary, Path(tempfile.mkdtemp(prefix="serve-load-")), timeout_s=120)
        tab = browser.new_tab(1280, 900)
        result["people_view_cold_s"], result["images_in_window"] = _load(tab, url)
        result["cards"] = tab.eval("document.querySelectorAll('.card').length")
        result["after_people_view"] = _memory_mb(proc.pid)
        result["people_view_warm_s"], _ = _load(tab, base)
        ids = tab.eval("[...document.querySelectorAll('.card')].map(c => Number(c.dataset.id))")
        result["identity_page_s"], _ = _load(tab, f"{base}identity/{ids[0]}")
        t0 = time.perf_counter()
        answer = tab.eval(
            "fetch('/api/corrections', {method: 'POST', headers: {'Content-Type': 'application/json'},"
            f" body: JSON.stringify({{kind: 'merge', ids: [{ids[0]}, {ids[1]}]}})}}).then(r => r.status)",
            await_promise=True,
        )
        result["merge_answer_s"] = round(time.perf_counter() - t0, 3)
        assert answer == 200, answer
        result["people_view_after_merge_s"], _ = _load(tab, base)
        result["after_merge"] = _memory_mb(proc.pid)
        return result
    finally:
        if browser is not None:
            browser.close()
        proc.terminate()
        proc.wait(timeout=300)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=500)
    ap.add_argument("--sightings", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="write the case here and keep it (default: a temporary folder)")
    args = ap.parse_args(argv)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="serve-load-case-"))
    out = folder / "out"
    t0 = time.perf_counter()
    if not (out / "vidcluster.db").exists():
        write_case(out, people=args.people, sightings=args.sightings, clips=False)
    built_s = round(time.perf_counter() - t0, 1)
    result = measure(out, args.people)
    result["case_written_s"] = built_s
    result["sightings"] = args.people * args.sightings
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
