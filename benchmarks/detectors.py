"""YuNet against HOG on the same frames: cost, recall of HOG's faces, box calibration, descriptors.

Frames: cctv-asl and the crowd clip and the hamilton clip sampled at 2 fps, the hamilton,
photos-johns and photos-deepface stills. HOG runs as vidcluster used it until now
(detect_width 1280, upsample 1). For every frame:

- *recall*: every HOG box must have a YuNet box (mapped to HOG's shape) with IoU >= MATCH_IOU;
  the HOG faces without one are listed;
- *calibration*: the YuNet -> HOG box mapping (centre shift and side, relative to YuNet's box
  width/height), as medians over the faces both found; compare with faces.YUNET_TO_HOG;
- *descriptors*: dlib's landmarks + 128-d descriptor on the HOG box and on the mapped YuNet box
  of the same face; their distance (same face, so it should stay well under 0.1);
- *extra faces*: YuNet faces HOG did not find, by size, with their quality, so the quality gate
  can be checked (tiny or turned faces must not steer clustering), and a snapshot sheet of
  them (benchmarks/results/yunet_extra.jpg) to look for false positives.

CPU seconds are process time (all threads). Run: `python -m benchmarks detectors`.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Iterator

import cv2
import numpy as np

from vidcluster.analysis.feed import face_crop
from vidcluster.analysis.quality import face_quality
from vidcluster.models import dlib_models
from vidcluster.models.detectors import YUNET_TO_HOG, HogDetector, YunetDetector, detect_yunet_raw
from vidcluster.models.encoders import DlibEncoder
from vidcluster.types import Detections, box_iou
from vidcluster.video.sampler import sample_video

from .common import RESULTS, MissingData, data, save, table

MATCH_IOU = 0.5
CALIBRATION_IOU = 0.3  # raw YuNet box against HOG box, before the mapping
VIDEO_FPS = 2.0
IMAGE_EXT = (".jpg", ".jpeg", ".png")


def greedy_pairs(iou: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """One-to-one pairs (row, col) by descending IoU, each at least `min_iou`."""
    pairs, used_r, used_c = [], set(), set()
    for flat in np.argsort(-iou, axis=None):
        r, c = np.unravel_index(flat, iou.shape)
        if iou[r, c] < min_iou:
            break
        if r not in used_r and c not in used_c:
            pairs.append((int(r), int(c)))
            used_r.add(r)
            used_c.add(c)
    return pairs


def frames() -> Iterator[tuple[str, str, np.ndarray]]:
    """(data set, frame id, RGB image) for every frame the comparison uses."""
    videos = [("cctv-asl", p) for p in sorted(data("cctv-asl").rglob("*.mkv"))]
    videos += [("crowd", data("crowd", "arcade_1080p.mp4")), ("hamilton", data("hamilton", "short_hamilton_clip.mp4"))]
    for name, path in videos:
        for frame in sample_video(path, VIDEO_FPS):
            yield name, f"{path.name}@{frame.pts_s:.2f}", frame.image
    for name in ("hamilton", "photos-johns", "photos-deepface"):
        for path in sorted(p for p in data(name).rglob("*") if p.suffix.lower() in IMAGE_EXT):
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is not None:
                yield name, path.name, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _cpu_ms(fn, *args):
    t0 = time.process_time()
    out = fn(*args)
    return out, (time.process_time() - t0) * 1000.0


def _hog_cached(cache: dict, key: str, image: np.ndarray) -> tuple[Detections, float]:
    """HOG is the slow side and does not change: its boxes and CPU ms are kept between runs."""
    if key not in cache:
        found, ms = _cpu_ms(HogDetector(1280, 1).detect, image)
        cache[key] = (found.boxes, found.scores, ms)
    boxes, scores, ms = cache[key]
    return Detections(boxes, scores), ms


def compare(yunet_width: int = 1280, score_threshold: float = 0.6, smallest_face_px: int = 0) -> dict:
    cache_path = RESULTS / "hog_boxes.pkl"
    cache = pickle.loads(cache_path.read_bytes()) if cache_path.exists() else {}
    per_set: dict[str, dict] = {}
    shifts, lost, extras, dists, sheet, matched_scores = [], [], [], [], [], []
    for name, fid, image in frames():
        s = per_set.setdefault(
            name,
            {
                "frames": 0,
                "hog_ms": 0.0,
                "yunet_ms": 0.0,
                "hog_faces": 0,
                "yunet_faces": 0,
                "hog_lost": 0,
                "extra": 0,
                "extra_steer": 0,
                "hog_min_px": 10**6,
            },
        )
        found, hog_ms = _hog_cached(cache, f"{name}/{fid}", image)
        detector = YunetDetector(yunet_width, score_threshold, smallest_face_px)
        ((rows, _),) = detect_yunet_raw([image], [detector.width_for(image.shape[1])], score_threshold)
        raw = rows[:, :4].copy()  # as the model gives them, for the calibration only
        raw_xyxy = np.c_[raw[:, :2], raw[:, :2] + raw[:, 2:4]]
        new, yn_ms = _cpu_ms(detector.detect, image)  # the whole new path: mapping, HOG confirmation
        mapped, scores = new.boxes, new.scores
        s["frames"] += 1
        s["hog_ms"] += hog_ms
        s["yunet_ms"] += yn_ms
        s["hog_faces"] += len(found)
        if len(found):
            s["hog_min_px"] = min(s["hog_min_px"], int((found.boxes[:, 3] - found.boxes[:, 1]).min()))
        s["yunet_faces"] += len(new)
        for r, c in greedy_pairs(box_iou(found.boxes, raw_xyxy), CALIBRATION_IOU):
            hx1, hy1, hx2, hy2 = found.boxes[r].astype(np.float64)
            x, y, w, h = raw[c]
            shifts.append(
                (((hx1 + hx2) / 2 - (x + w / 2)) / w, ((hy1 + hy2) / 2 - (y + h / 2)) / h, (hx2 - hx1) / w, name)
            )
        pairs = greedy_pairs(box_iou(found.boxes, mapped), MATCH_IOU)
        matched_hog = {r for r, _ in pairs}
        matched_yn = {c for _, c in pairs}
        matched_scores += [(name, float(scores[c])) for _, c in pairs]
        for r in range(len(found)):
            if r not in matched_hog:
                s["hog_lost"] += 1
                lost.append(
                    {
                        "set": name,
                        "frame": fid,
                        "box": found.boxes[r].tolist(),
                        "hog_score": float(found.scores[r]),
                        "best_iou": float(box_iou(found.boxes[r : r + 1], mapped).max(initial=0.0)),
                    }
                )
        if pairs:
            hb = found.boxes[[r for r, _ in pairs]]
            yb = mapped[[c for _, c in pairs]]
            eh = DlibEncoder().encode(image, dlib_models.landmarks(image, hb))
            ey = DlibEncoder().encode(image, dlib_models.landmarks(image, yb))
            dists += [(name, float(d)) for d in np.linalg.norm(eh - ey, axis=1)]
        extra = [c for c in range(len(new)) if c not in matched_yn]
        if extra:
            eb, esc = mapped[extra], scores[extra]
            q = face_quality(image, eb, dlib_models.landmarks(image, eb), esc)
            heights = eb[:, 3] - eb[:, 1]
            steer = (q >= 0.15) & (heights >= 20)
            s["extra"] += len(eb)
            s["extra_steer"] += int(steer.sum())
            for box, qq, st, sc in zip(eb, q, steer, esc, strict=True):
                extras.append(
                    {
                        "set": name,
                        "frame": fid,
                        "height_px": int(box[3] - box[1]),
                        "quality": float(qq),
                        "steers": bool(st),
                        "score": float(sc),
                    }
                )
                if st and len(sheet) < 120:
                    sheet.append(face_crop(image, box, 64))
    RESULTS.mkdir(parents=True, exist_ok=True)
    cache_path.write_bytes(pickle.dumps(cache))
    arr = np.array([t[:3] for t in shifts]) if shifts else np.zeros((0, 3))
    calibration = {
        "pairs": len(arr),
        "dx": float(np.median(arr[:, 0])) if len(arr) else None,
        "dy": float(np.median(arr[:, 1])) if len(arr) else None,
        "side": float(np.median(arr[:, 2])) if len(arr) else None,
        "per_set": {
            n: [round(float(np.median([t[i] for t in shifts if t[3] == n])), 4) for i in range(3)]
            for n in sorted({t[3] for t in shifts})
        },
    }
    d = np.array([x for _, x in dists])
    descriptor = {
        "pairs": len(d),
        "median": float(np.median(d)) if len(d) else None,
        "p95": float(np.percentile(d, 95)) if len(d) else None,
        "max": float(d.max()) if len(d) else None,
        "per_set_max": {n: round(max(x for m, x in dists if m == n), 4) for n in sorted({m for m, _ in dists})},
    }
    if sheet:
        cols = 12
        rows_img = [
            np.hstack(sheet[i : i + cols] + [np.zeros_like(sheet[0])] * (cols - len(sheet[i : i + cols])))
            for i in range(0, len(sheet), cols)
        ]
        RESULTS.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(RESULTS / "yunet_extra.jpg"), cv2.cvtColor(np.vstack(rows_img), cv2.COLOR_RGB2BGR))
    scores_of = {n: np.array([x for m, x in matched_scores if m == n]) for n in sorted({m for m, _ in matched_scores})}
    score_quantiles = {n: np.percentile(v, [0, 1, 5, 50]).round(3).tolist() for n, v in scores_of.items()}
    return {
        "matched_yunet_score_q0_1_5_50": score_quantiles,
        "yunet_width": yunet_width,
        "score_threshold": score_threshold,
        "smallest_face_px": smallest_face_px,
        "per_set": per_set,
        "lost": lost,
        "calibration": calibration,
        "mapping_in_use": list(YUNET_TO_HOG),
        "descriptor_distance": descriptor,
        "extras": extras,
    }


def main(quick: bool = False, yunet_width: int = 1280, smallest_face_px: int = 0) -> dict:
    try:
        result = compare(yunet_width, smallest_face_px=smallest_face_px)
    except MissingData as exc:
        print(f"Detectors: {exc}")
        return {}
    rows = [
        {"set": n, **{k: (v / s["frames"] if k.endswith("_ms") else v) for k, v in s.items()}}
        for n, s in result["per_set"].items()
    ]
    print(table("YuNet vs HOG (CPU ms per frame; hog_lost = HOG faces with no YuNet box at IoU >= 0.5)", rows))
    print("calibration (dx, dy, side):", result["calibration"], " in use:", result["mapping_in_use"])
    print("descriptor distance HOG box vs mapped YuNet box:", result["descriptor_distance"])
    print("YuNet scores of the faces HOG also found (min, 1 %, 5 %, median):", result["matched_yunet_score_q0_1_5_50"])
    for row in result["lost"]:
        print("  lost:", row)
    save(f"detectors-w{yunet_width}-s{smallest_face_px}", result)
    return result


if __name__ == "__main__":
    import sys

    main("--quick" in sys.argv, *[int(a) for a in sys.argv[1:] if a.isdigit()])
