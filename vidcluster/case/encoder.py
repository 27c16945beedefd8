"""Which encoder made a case's descriptors: the one answer the regrouping, the report and search use.

The store records the descriptor space of every vector (`Store.encoder_spaces`); the last run's
settings say which encoder of that space ran (dlib's graph or dlib itself: the same vectors).
"""

from __future__ import annotations

from ..catalog import ENCODERS
from ..errors import StoreError
from .schema import LEGACY_SPACE
from .store import Store

# descriptor space -> the encoders that make its vectors, in catalogue order
ENCODERS_OF: dict[str, list[str]] = {
    space: [name for name, spec in ENCODERS.items() if spec.space == space]
    for space in {s.space for s in ENCODERS.values()}
}


def case_encoder(store: Store) -> str:
    """The name of the encoder whose vectors the case holds.

    A case without descriptors yet answers with the encoder its last run named (dlib for a store
    older than the choice of encoder); a store holding two spaces, or one no encoder makes, is
    damaged (StoreError).
    """
    params = (store.get_meta("last_run") or {}).get("parameters") or {}
    named = (params.get("faces") or {}).get("encoder")
    spaces = store.encoder_spaces()
    if not spaces:
        return named if named in ENCODERS else ENCODERS_OF[LEGACY_SPACE][0]
    if len(spaces) > 1:
        raise StoreError(f"{store.path}: descriptors of {', '.join(sorted(spaces))} in one case: a damaged store")
    (space,) = spaces
    if space not in ENCODERS_OF:
        raise StoreError(f"{store.path}: descriptors of an unknown encoder space {space!r}")
    return named if named in ENCODERS_OF[space] else ENCODERS_OF[space][0]
