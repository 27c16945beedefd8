"""Clustering time, memory and accuracy for 10k .. 1M synthetic dlib-like descriptors.

Identities are tight groups (same person ~0.3 apart, different people ~0.7 apart) of uneven
sizes, plus 5 % lone noise faces, and LOOKALIKE_SHARE of the people have a look-alike whose
centre is LOOKALIKE_GAP away (their faces come within ~0.45-0.55 of each other, as different
men with glasses or brothers do). The new default (graph-average) runs beside the old default
(dbscan with its chain check) and scikit-learn's DBSCAN(eps=0.5, min_samples=5) as in the
classic recipe; each in its own subprocess with a time limit. After a timeout, larger sizes of
that method are not tried, and a size whose time predicted from the last one (quadratic
growth) exceeds the limit is reported as a timeout without being started. For the graph
method the recall of its approximate neighbour search is measured on a sample of rows
(against an exact search, neighbours within the clustering radius).
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from .common import run_child, save, table

DIM = 128
LOOKALIKE_SHARE = 0.05  # people who have a look-alike
LOOKALIKE_GAP = 0.45  # distance between a look-alike pair's centres
RECALL_UP_TO = 100_000  # rows: recall is measured up to this size (at 1M it would cost a second search)
GROWTH = {"graph-average": 1.2, "dbscan": 2.0, "sklearn-dbscan": 2.0}  # time ~ n^growth, to skip hopeless runs
RECALL_SAMPLE = 2000  # rows whose neighbours are checked against an exact search
CHUNK = 100_000  # rows generated at a time (keeps the generator's own memory small)


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
    pairs = rng.permutation(n_people)[: 2 * int(n_people * LOOKALIKE_SHARE / 2)].reshape(-1, 2)
    step = rng.normal(size=(len(pairs), DIM))
    centres[pairs[:, 1]] = centres[pairs[:, 0]] + (step / np.linalg.norm(step, axis=1, keepdims=True) * LOOKALIKE_GAP)
    truth = np.concatenate([np.repeat(np.arange(n_people), sizes), n_people + np.arange(n_noise)])
    x = np.empty((n, DIM), np.float32)
    for lo in range(0, n, CHUNK):
        hi = min(n, lo + CHUNK)
        x[lo:hi] = centres[truth[lo:hi]] + rng.standard_normal((hi - lo, DIM), dtype=np.float32) * member_sd
    x[int(sizes.sum()) :] = centres[n_people:]  # noise faces sit alone
    order = rng.permutation(n)
    return x[order], truth[order]


def neighbour_recall(x: np.ndarray, k: int, radius: float, seed: int = 0) -> float:
    """Share of the true neighbours (k nearest, within radius) of sampled rows that knn_graph finds."""
    import faiss

    from vidcluster.analysis.neighbours import knn_graph

    graph = knn_graph(x, k, radius=radius)
    rows = np.random.default_rng(seed).choice(len(x), min(RECALL_SAMPLE, len(x)), replace=False)
    dist_sq, idx = faiss.knn(x[rows], x, k + 1)
    found = total = 0
    for r, near, d in zip(rows.tolist(), idx, dist_sq, strict=True):
        true = {int(j) for j, dd in zip(near, d, strict=True) if j != r and dd <= radius**2}
        true = set(sorted(true, key=lambda j: float(((x[j] - x[r]) ** 2).sum()))[:k])
        found += len(true & set(graph.idx[r].tolist()))
        total += len(true)
    return found / max(total, 1)


def run_one(n: int, method: str, seed: int = 0) -> dict:
    """Child: build the data, time the clustering only (wall and CPU), score BCubed F."""
    from vidcluster.analysis.identities import cluster
    from vidcluster.analysis.metrics import bcubed
    from vidcluster.config import load_config

    # the descriptors are shaped like dlib's (see `descriptors`): dlib's thresholds, whatever the default encoder
    dlib = load_config(None, {"faces": {"encoder": "dlib"}}).identities
    x, truth = descriptors(n, seed)
    t0, c0 = time.monotonic(), time.process_time()
    if method in ("graph-average", "dbscan"):
        labels = cluster(x, replace(dlib, algorithm=method))
    else:
        from sklearn.cluster import DBSCAN

        labels = DBSCAN(eps=0.5, min_samples=5, metric="euclidean").fit_predict(x)
    cluster_s, cpu_s = time.monotonic() - t0, time.process_time() - c0
    _, _, f = bcubed(truth, labels)
    counts = np.bincount(truth)
    out = {
        "cluster_s": cluster_s,
        "cpu_s": cpu_s,
        "B3_F": f,
        "ids_found": len(set(labels.tolist()) - {-1}),
        "ids_true": int(np.sum(counts >= 2)),
    }  # people with two or more faces (lone noise faces not counted)
    if method == "graph-average" and n <= RECALL_UP_TO:
        out["nn_recall"] = neighbour_recall(x, dlib.neighbours, max(dlib.eps, dlib.eps_mean), seed)
    return out


def run(quick: bool = False) -> list[dict]:
    sizes = [10_000, 30_000] if quick else [10_000, 100_000, 1_000_000]
    limit = 60 if quick else 240
    rows = []
    for method in ("graph-average", "dbscan", "sklearn-dbscan"):
        stopped = False
        last: tuple[int, float] | None = None
        for n in sizes:
            if stopped:
                rows.append({"n": n, "method": method, "status": "not run (smaller size timed out)"})
                continue
            growth = GROWTH[method]
            if last is not None and last[1] * (n / last[0]) ** growth > limit:
                # do not start a run that cannot finish in time
                stopped = True
                predicted = last[1] * (n / last[0]) ** growth
                rows.append(
                    {"n": n, "method": method, "status": f"timeout: not run, predicted ~{predicted:.0f} s > {limit} s"}
                )
                continue
            r = run_child("benchmarks.scale:run_one", {"n": n, "method": method}, limit)
            if r.get("status") == "timeout":
                stopped = True
                rows.append({"n": n, "method": method, "status": f"timeout (> {limit} s)"})
                continue
            if r.get("status") == "ok":
                last = (n, r["cluster_s"])
            rows.append(
                {
                    "n": n,
                    "method": method,
                    "cluster_s": r.get("cluster_s"),
                    "cpu_s": r.get("cpu_s"),
                    "peak_rss_mb": r.get("peak_rss_mb"),
                    "B3_F": r.get("B3_F"),
                    "nn_recall": r.get("nn_recall", ""),
                    "ids_found": r.get("ids_found"),
                    "ids_true": r.get("ids_true"),
                    "status": r.get("status", "") + " " + r.get("error", ""),
                }
            )
    return rows


def main(quick: bool = False) -> list[dict]:
    rows = run(quick)
    print(
        table(
            "Clustering scale (synthetic 128-d descriptors)",
            rows,
            [
                "n",
                "method",
                "cluster_s",
                "cpu_s",
                "peak_rss_mb",
                "B3_F",
                "nn_recall",
                "ids_found",
                "ids_true",
                "status",
            ],
        )
    )
    save("scale", rows)
    return rows


if __name__ == "__main__":
    import sys

    main("--quick" in sys.argv)
