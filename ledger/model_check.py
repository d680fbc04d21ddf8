"""Which finalized round produced a model file: :func:`verify_model` reads a flat float32
vector (``.npy`` or raw ``.f32``), hashes it and finds the round whose aggregate hash it is.

``parameters_hash`` is the node's aggregate hash, re-implemented here because the ledger does
not import the node: ``sha256(b"medmesh/params/v1" + float32 little-endian bytes)``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from .errors import LedgerError

__all__ = ["PARAMS_DOMAIN", "parameters_hash", "read_model_file", "verify_model"]

#: Domain prefix of the aggregate hash (node.consensus.update.parameters_hash).
PARAMS_DOMAIN = b"medmesh/params/v1"


def parameters_hash(params: np.ndarray) -> bytes:
    """SHA-256 of ``PARAMS_DOMAIN`` + the vector's float32 little-endian bytes."""
    return hashlib.sha256(
        PARAMS_DOMAIN + np.ascontiguousarray(params, dtype="<f4").tobytes()
    ).digest()


def read_model_file(path: Path | str) -> np.ndarray:
    """A flat float32 parameter vector from a ``.npy`` file or raw little-endian ``.f32`` bytes."""
    path = Path(path)
    try:
        if path.suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            raw = path.read_bytes()
            if len(raw) % 4:
                raise LedgerError(
                    f"{path}: {len(raw)} bytes is not a whole number of float32 values"
                )
            array = np.frombuffer(raw, dtype="<f4")
    except OSError as exc:
        raise LedgerError(f"cannot read model file {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise LedgerError(f"{path} is not a .npy array: {exc}") from exc
    if array.dtype.kind != "f":
        raise LedgerError(f"{path}: expected float parameters, found dtype {array.dtype}")
    return np.asarray(array, dtype="<f4").reshape(-1)


def verify_model(report: dict[str, Any], path: Path | str) -> dict[str, Any]:
    """Which finalized round produced the model in ``path``: its contributors and attesters,
    or ``round: None`` if no finalized round has its hash."""
    digest = "0x" + parameters_hash(read_model_file(path)).hex()
    peers = {i["account"]: i["peer_id"] for i in report["identities"]}
    for r in report["rounds"]:
        if r["finalized"] and r["aggregate_hash"] == digest:
            return {
                "file": str(path),
                "hash": digest,
                "round": r["round"],
                "contributors": [{"account": a, "peer_id": peers.get(a)} for a in r["accepted"]],
                "attesters": [
                    {
                        "account": x["account"],
                        "peer_id": peers.get(x["account"]),
                        "agrees": x["agrees"],
                    }
                    for x in r["attestations"]
                ],
                "finalizer": r["finalizer"],
            }
    return {"file": str(path), "hash": digest, "round": None, "contributors": [], "attesters": []}
