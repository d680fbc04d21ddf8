"""What a hospital node keeps on disk between runs, beside its privacy ledger.

``state.json`` names the last round this node completed, the finalized round whose aggregate
its parameters are (``params_round``, checked against the hash stored with them), the
standardizer agreed at set-up, and the peer ID it belongs to. ``params.npy`` holds the global
parameters. Both are written atomically, parameters first, so a crash leaves either the old
pair or the new one: a ``state.json`` never names parameters that are not on disk.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from node.data import Standardizer
from node.fsutil import atomic_write_bytes, atomic_write_json
from node.update import parameters_hash

__all__ = ["NodeState", "StateError"]


class StateError(ValueError):
    """A state directory that cannot be trusted (torn, foreign or edited)."""


@dataclass
class NodeState:
    peer_id: str
    completed_round: int
    params_round: int
    params: np.ndarray
    standardizer: Standardizer | None

    # -- disk ------------------------------------------------------------------------
    def save(self, state_dir: Path) -> None:
        state_dir = Path(state_dir)
        buf = io.BytesIO()
        np.save(buf, self.params.astype(np.float32), allow_pickle=False)
        atomic_write_bytes(state_dir / "params.npy", buf.getvalue(), mode=0o600)
        std = None if self.standardizer is None else {
            "mean": self.standardizer.mean.tolist(), "std": self.standardizer.std.tolist()}
        atomic_write_json(state_dir / "state.json", {
            "version": 1, "peer_id": self.peer_id, "completed_round": self.completed_round,
            "params_round": self.params_round, "params_hash": parameters_hash(self.params).hex(),
            "standardizer": std}, mode=0o600)

    @classmethod
    def load(cls, state_dir: Path, peer_id: str) -> NodeState | None:
        """The saved state, None on a first start; StateError if it is not this node's."""
        state_dir = Path(state_dir)
        path = state_dir / "state.json"
        if not path.exists():
            return None
        try:
            obj = json.loads(path.read_text())
            params = np.load(state_dir / "params.npy", allow_pickle=False).astype(np.float32)
            std = obj["standardizer"]
            standardizer = None if std is None else Standardizer(
                np.asarray(std["mean"], dtype=np.float64), np.asarray(std["std"], dtype=np.float64))
            state = cls(str(obj["peer_id"]), int(obj["completed_round"]), int(obj["params_round"]),
                        params, standardizer)
            stored_hash = str(obj["params_hash"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StateError(f"state dir {state_dir} is unreadable ({exc}); move it away to start afresh") from None
        if state.peer_id != peer_id:
            raise StateError(f"state dir {state_dir} belongs to peer {state.peer_id}, not to this identity ({peer_id})")
        if parameters_hash(params).hex() != stored_hash:
            raise StateError(f"state dir {state_dir}: params.npy does not match the hash in state.json")
        return state
