"""What a hospital node keeps on disk between runs, beside its privacy ledger.

``state.json`` (version 2) is the whole state in one file, written atomically (a fsynced
temporary file renamed over the old one): the last round this node completed, the finalized
round whose aggregate its parameters are (``params_round``), the parameters themselves
(float32 little-endian, base64) with their hash, the standardizer agreed at set-up, and the
peer ID it belongs to. A crash leaves the old file or the new one, never a mix.

Version 1 kept the parameters apart in ``params.npy``, written before ``state.json``; a crash
between the two writes (or an edit) left a pair whose hash does not match (issue 17.3). Such a
state is not refused any more: :meth:`NodeState.load` keeps its rounds and standardizer, drops
the parameters (``params=None``, ``params_round=0``) and says why in ``recovered``; the runner
then fetches the chain's latest finalized model from a peer, checked against the hash on chain
(:mod:`node.service.modelsync`).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from node.consensus.update import parameters_hash
from node.data.samples import Standardizer
from node.errors import MedmeshError
from node.service.fsutil import atomic_write_json

__all__ = ["NodeState", "StateError", "STATE_FILE"]

STATE_FILE = "state.json"
_LEGACY_PARAMS = "params.npy"


class StateError(MedmeshError, ValueError):
    """A state directory that cannot be trusted (unreadable or another node's)."""


@dataclass
class NodeState:
    peer_id: str
    completed_round: int
    params_round: int
    params: np.ndarray | None  # None: dropped on load (torn or edited); fetch the chain's model
    standardizer: Standardizer | None
    recovered: str | None = None  # why the parameters were dropped on load

    # -- disk ------------------------------------------------------------------------
    def save(self, state_dir: Path) -> None:
        """Write the whole state as one file, atomically (mode 0600)."""
        if self.params is None:
            raise ValueError("no parameters to save")
        state_dir = Path(state_dir)
        raw = np.asarray(self.params, dtype="<f4").tobytes()
        std = (
            None
            if self.standardizer is None
            else {"mean": self.standardizer.mean.tolist(), "std": self.standardizer.std.tolist()}
        )
        atomic_write_json(
            state_dir / STATE_FILE,
            {
                "version": 2,
                "peer_id": self.peer_id,
                "completed_round": self.completed_round,
                "params_round": self.params_round,
                "params_hash": parameters_hash(self.params).hex(),
                "params": base64.b64encode(raw).decode("ascii"),
                "standardizer": std,
            },
            mode=0o600,
        )
        (state_dir / _LEGACY_PARAMS).unlink(missing_ok=True)  # a version-1 leftover would mislead

    @classmethod
    def load(cls, state_dir: Path, peer_id: str) -> NodeState | None:
        """The saved state, None on a first start; StateError if unreadable or not this node's.

        Parameters that do not match their stored hash are dropped (``recovered`` says why),
        never used and never a reason to refuse the rest."""
        state_dir = Path(state_dir)
        path = state_dir / STATE_FILE
        if not path.exists():
            return None
        try:
            obj = json.loads(path.read_text())
            std = obj["standardizer"]
            standardizer = (
                None
                if std is None
                else Standardizer(
                    np.asarray(std["mean"], dtype=np.float64),
                    np.asarray(std["std"], dtype=np.float64),
                )
            )
            state = cls(
                str(obj["peer_id"]),
                int(obj["completed_round"]),
                int(obj["params_round"]),
                None,
                standardizer,
            )
            stored_hash = str(obj["params_hash"])
            version = int(obj.get("version", 1))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StateError(
                f"state dir {state_dir} is unreadable ({exc}); move it away to start afresh"
            ) from None
        if state.peer_id != peer_id:
            raise StateError(
                f"state dir {state_dir} belongs to peer {state.peer_id}, not to this identity ({peer_id})"
            )
        params, problem = _read_params(state_dir, obj, version)
        if params is not None and parameters_hash(params).hex() != stored_hash:
            params, problem = (
                None,
                f"parameters do not match the hash in {STATE_FILE} (torn write or edit)",
            )
        if params is None:
            state.params_round, state.recovered = 0, problem
        state.params = params
        return state


def _read_params(state_dir: Path, obj: dict, version: int) -> tuple[np.ndarray | None, str | None]:
    try:
        if version >= 2:
            raw = base64.b64decode(obj["params"], validate=True)
            if len(raw) % 4:
                raise ValueError(f"{len(raw)} bytes is not a float32 array")
            return np.frombuffer(raw, dtype="<f4").astype(np.float32), None
        return np.load(state_dir / _LEGACY_PARAMS, allow_pickle=False).astype(np.float32), None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"parameters unreadable ({exc})"
