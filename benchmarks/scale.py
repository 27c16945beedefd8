"""Clustering time and memory for 10k .. 1M synthetic dlib-like descriptors.

Identities are tight groups (same person ~0.2-0.4 apart, different people ~0.6-0.8) of uneven
sizes, plus 5 % lone noise faces. vidcluster.identities.cluster (defaults) vs scikit-learn
DBSCAN(eps=0.5, min_samples=5) as in the classic recipe; each run in its own subprocess with
a time limit. After a timeout, larger sizes of that method are not tried, and a size whose
time predicted from the last one (quadratic growth) exceeds the limit is reported as a timeout
without being started.
"""

from __future__ import annotations

import time

import numpy as np

from .common import run_child, save, table

DIM = 128


def descriptors(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 128) float32 descriptors and (n,) int64 truth labels (noise faces: a label each)."""
    rng = np.random.default_rng(seed)
    n_noise = n // 20
    n_people = max(1, (n - n_noise) // 25)
    sizes = rng.lognormal(0.0, 1.0, n_people)
    sizes = np.maximum(1, np.floor(sizes / sizes.sum() * (n - n_noise))).astype(np.int64)
    sizes[0] += (n - n_noise) - sizes.sum()
    sizes = np.maximum(sizes, 1)
    n_noise = n - int(sizes.sum())
    # per-dimension spreads chosen so that distance ~ spread * sqrt(2 * 128) = spread * 16
    centre_sd, member_sd = 0.70 / 16, 0.30 / 16
    mean = rng.normal(0, 0.09, DIM).astype(np.float32)  # dlib descriptors share an offset; harmless
    centres = (mean + rng.normal(0, centre_sd, (n_people + n_noise, DIM))).astype(np.float32)
    truth = np.concatenate([np.repeat(np.arange(n_people), sizes), n_people + np.arange(n_noise)])
    x = centres[truth] + rng.normal(0, member_sd, (n, DIM)).astype(np.float32)
    x[int(sizes.sum()):] = centres[n_people:]  # noise faces sit alone
    order = rng.permutation(n)
    return x[order], truth[order]


def run_one(n: int, method: str, seed: int = 0) -> dict:
    """Child: build the data, time the clustering only, score BCubed F."""
    from vidcluster.metrics import bcubed

    x, truth = descriptors(n, seed)
    t0 = time.monotonic()
    if method == "vidcluster":
        from vidcluster.config import IdentitiesConfig
        from vidcluster.identities import cluster

        labels = cluster(x, IdentitiesConfig())
    else:
        from sklearn.cluster import DBSCAN

        labels = DBSCAN(eps=0.5, min_samples=5, metric="euclidean").fit_predict(x)
    cluster_s = time.monotonic() - t0
    _, _, f = bcubed(truth, labels)
    counts = np.bincount(truth)
    return {"cluster_s": cluster_s, "B3_F": f, "ids_found": int(len(set(labels.tolist()) - {-1})),
            "ids_true": int(np.sum(counts >= 2))}  # people with two or more faces (lone noise faces not counted)


def run(quick: bool = False) -> list[dict]:
    sizes = [10_000, 30_000] if quick else [10_000, 100_000, 1_000_000]
    limit = 60 if quick else 180
    rows = []
    for method in ("vidcluster", "sklearn-dbscan"):
        stopped = False
        last: tuple[int, float] | None = None
        for n in sizes:
            if stopped:
                rows.append({"n": n, "method": method, "status": "not run (smaller size timed out)"})
                continue
            if last is not None and last[1] * (n / last[0]) ** 2 > limit:
                # neighbour search is quadratic in n: do not start a run that cannot finish in time
                stopped = True
                predicted = last[1] * (n / last[0]) ** 2
                rows.append({"n": n, "method": method, "status": f"timeout: not run, predicted ~{predicted:.0f} s > {limit} s"})
                continue
            r = run_child("benchmarks.scale:run_one", {"n": n, "method": method}, limit)
            if r.get("status") == "timeout":
                stopped = True
                rows.append({"n": n, "method": method, "status": f"timeout (> {limit} s)"})
                continue
            if r.get("status") == "ok":
                last = (n, r["cluster_s"])
            rows.append({"n": n, "method": method, "cluster_s": r.get("cluster_s"), "peak_rss_mb": r.get("peak_rss_mb"),
                         "B3_F": r.get("B3_F"), "ids_found": r.get("ids_found"), "ids_true": r.get("ids_true"),
                         "status": r.get("status", "") + " " + r.get("error", "")})
    return rows


def main(quick: bool = False) -> list[dict]:
    rows = run(quick)
    print(table("Clustering scale (synthetic 128-d descriptors)", rows,
                ["n", "method", "cluster_s", "peak_rss_mb", "B3_F", "ids_found", "ids_true", "status"]))
    save("scale", rows)
    return rows


if __name__ == "__main__":
    import sys

    main("--quick" in sys.argv)
