"""The names of every detector, encoder and clustering algorithm, and each encoder's distances.

This is the one list that config validation, the command line's choices, the resume key and the
manifest read. It holds facts only (no model library is imported here); `models.registry` binds
each name to the class that implements it.

Every threshold that is a distance between descriptors belongs to the encoder that made them:
two encoders' distances live on different scales, and one encoder's thresholds carried over to
another (even rescaled) merge different people. All distances are Euclidean between the vectors
an encoder returns; for an encoder with unit-length vectors, Euclidean d and cosine similarity s
are the same order: d * d = 2 * (1 - s).
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class DistanceProfile:
    """The distance thresholds of one descriptor space (see `PROFILE_FIELDS` for where each goes).

    eps: two single faces are the same person at most this far apart.
    eps_mean: the tighter limit two track means approach as they average more faces.
    eps_average: largest average distance at which two groups of faces join (graph-average).
    track_max_distance: a tracker link between two encoded faces at most this far.
    track_confirm_distance: a link that had to be confirmed by descriptor needs at most this.
    search_max_distance: `vidcluster search` lists sightings up to this far from the probe.
    sweep_low, sweep_high: the range `vidcluster calibrate` tries thresholds in.
    min_spread: graph-average never takes a group's spread for less than this (one person's
        faces in one clip are farther apart than that; near-duplicates say little).
    """

    eps: float
    eps_mean: float
    eps_average: float
    track_max_distance: float
    track_confirm_distance: float
    search_max_distance: float
    sweep_low: float
    sweep_high: float
    min_spread: float


# (config section, field) -> the profile's attribute that gives it when the config does not
PROFILE_FIELDS: dict[tuple[str, str], str] = {
    ("identities", "eps"): "eps",
    ("identities", "eps_mean"): "eps_mean",
    ("identities", "eps_average"): "eps_average",
    ("identities", "min_spread"): "min_spread",
    ("tracks", "max_distance"): "track_max_distance",
    ("tracks", "confirm_distance"): "track_confirm_distance",
}


@dataclass(frozen=True)
class EncoderSpec:
    """One face encoder: `space` names the vectors it makes (two encoders of one space, such as
    dlib's network on ONNX Runtime and dlib itself, give the same vectors and may be compared);
    `version` changes whenever its vectors could change."""

    name: str
    space: str
    version: str
    dim: int
    profile: DistanceProfile
    summary: str


# dlib's ResNet (face_recognition's): its reference threshold is 0.6, the classic recipe's
# DBSCAN used 0.5; the means of tracks are held tighter (see DESIGN.md, facts about descriptors).
DLIB_PROFILE = DistanceProfile(
    eps=0.5,
    eps_mean=0.42,
    eps_average=0.6,
    track_max_distance=0.6,
    track_confirm_distance=0.55,
    search_max_distance=0.6,
    sweep_low=0.30,
    sweep_high=0.80,
    min_spread=0.2,
)

# SFace's thresholds were measured in cosine distance c on YuNet's faces of photos-johns,
# photos-deepface and cctv-asl (1483 same-person and 6683 different-person pairs) and are written
# here as Euclidean d = sqrt(2 c). Rule: a single-face threshold lets through the same share of
# different-person pairs as dlib's value does on dlib's distances (dlib's eps 0.5: 2.0 %, so is
# SFace's c 0.63); where dlib's value lets none through (the sweep's lower end), the share of
# same-person pairs accepted is matched instead (the sweep's lower end, min_spread: dlib's 0.2
# takes 2.6 % of same-person pairs and no different-person pair, SFace's 0.41 the same 2.6 %);
# eps_mean takes the place dlib's takes in the gap
# between the largest same-person and the smallest different-person distance of track means.
SFACE_PROFILE = DistanceProfile(
    eps=1.12,
    eps_mean=0.99,
    eps_average=1.21,
    track_max_distance=1.21,
    track_confirm_distance=1.17,
    search_max_distance=1.21,
    sweep_low=0.60,
    sweep_high=1.33,
    min_spread=0.41,
)

ENCODERS: dict[str, EncoderSpec] = {
    spec.name: spec
    for spec in (
        EncoderSpec(
            "dlib",
            "dlib-resnet-v1",
            "onnx-1",
            128,
            DLIB_PROFILE,
            "dlib's 128-d ResNet as an ONNX graph built from the installed weights (exact to dlib)",
        ),
        EncoderSpec(
            "dlib-reference",
            "dlib-resnet-v1",
            "dlib-1",
            128,
            DLIB_PROFILE,
            "dlib's 128-d ResNet run by dlib itself (the reference; ~20x slower)",
        ),
        EncoderSpec(
            "sface",
            "sface-2021dec",
            "int8bq-1",
            128,
            SFACE_PROFILE,
            "OpenCV Zoo's SFace (MobileFaceNet, 128-d, unit length), aligned on YuNet's key points",
        ),
    )
}
# The default: SFace finds exactly the people present in every case dlib does and in photos-deepface
# too, where dlib splits one person (`python -m benchmarks cases`, README); dlib stays one flag away.
DEFAULT_ENCODER = "sface"

DETECTORS: dict[str, str] = {
    "auto": "yunet for an encoder aligned on its key points (sface); else cnn when dlib has CUDA, else yunet, else hog",
    "yunet": "OpenCV Zoo's YuNet on ONNX Runtime",
    "hog": "dlib's HOG + linear SVM",
    "cnn": "dlib's CNN (MMOD), batched on a GPU",
}
ALGORITHMS: tuple[str, ...] = ("graph-average", "dbscan", "chinese-whispers")
ENGINES: tuple[str, ...] = ("local", "ray")


def profile_of(encoder: str) -> DistanceProfile:
    """The distance profile of `encoder` (a name in ENCODERS).

    >>> profile_of("dlib").eps
    0.5
    """
    return ENCODERS[encoder].profile


def profile_values(encoder: str) -> dict[tuple[str, str], float]:
    """{(section, field): value} of every config field that `encoder`'s profile sets.

    >>> profile_values("dlib")[("tracks", "confirm_distance")]
    0.55
    """
    profile = profile_of(encoder)
    return {key: getattr(profile, attr) for key, attr in PROFILE_FIELDS.items()}


assert set(PROFILE_FIELDS.values()) <= {f.name for f in fields(DistanceProfile)}
