"""YuNet's CPU cost: cv2.FaceDetectorYN against vidcluster.models.yunet (onnxruntime, dequantised
float graph) on the same frames, one thread each, whole detect calls (padding, forward, decoding
and NMS). CPU ms per frame are process time. FaceDetectorYN takes one frame a call, so its
"batch 4" is four calls. Frames: a cctv-asl frame (640x480) and the 1280x720 detection copy of
the crowd clip. Run: `python -m benchmarks yunet_onnx`.
"""

from __future__ import annotations

import time

import av
import cv2
import numpy as np

from vidcluster.models import yunet
from vidcluster.models.graphs import packaged_file
from vidcluster.models.imaging import detection_scale, downscale

from .common import data, save, table

THRESHOLD = 0.6


def _frames(path, count: int) -> list[np.ndarray]:
    out = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % 10 == 0:
                out.append(frame.to_ndarray(format="bgr24"))
            if len(out) == count:
                return out
    return out


def _cpu_ms(call, frames_per_call: int, repeats: int) -> float:
    call()  # warm: session shapes, allocations
    start = time.process_time()
    for _ in range(repeats):
        call()
    return (time.process_time() - start) * 1000.0 / (repeats * frames_per_call)


def main(quick: bool = False) -> None:
    cv2.setNumThreads(1)
    repeats = 3 if quick else 10
    cctv = _frames(next(iter(sorted(data("cctv-asl").glob("*/*.mkv")))), 4)
    crowd = [downscale(f, detection_scale(f.shape[1], 1280)) for f in _frames(data("crowd", "arcade_1080p.mp4"), 4)]
    weights = np.frombuffer(packaged_file(yunet.PACKAGE, yunet.WEIGHTS), np.uint8)
    opencv = cv2.FaceDetectorYN.create(
        "onnx", weights, np.zeros(0, np.uint8), (320, 320), THRESHOLD, yunet.NMS_IOU, yunet.TOP_K
    )
    yunet.session(1)

    def opencv_detect(frames):
        for frame in frames:
            opencv.setInputSize((frame.shape[1], frame.shape[0]))
            opencv.detect(frame)

    rows = []
    for name, frames in (("640x480", cctv), ("1280x720", crowd)):
        for batch in (1, 4):
            chunk = frames[:batch]
            rows.append(
                {
                    "input": name,
                    "batch": batch,
                    # chunk bound as a default: each lambda times this batch, not whatever the loop left behind
                    "opencv_ms": _cpu_ms(lambda chunk=chunk: opencv_detect(chunk), batch, repeats),
                    "onnxruntime_ms": _cpu_ms(
                        lambda chunk=chunk: yunet.detect_batch(chunk, THRESHOLD, threads=1), batch, repeats
                    ),
                }
            )
            rows[-1]["speedup"] = rows[-1]["opencv_ms"] / rows[-1]["onnxruntime_ms"]
    print(table("YuNet CPU ms per frame, one thread (process time)", rows))
    save("yunet_onnx", rows)


if __name__ == "__main__":
    main()
