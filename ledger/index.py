"""The event index behind the audit: every event of the deployment's contracts, decoded once and
cached by block.

An :class:`EventIndex` reads logs from the deployment's start block to the head, decodes them
with the compiled ABIs (plain ``eth_abi``, no per-log web3 machinery: a node's raw
``eth_getLogs`` answer is decoded directly) and keeps them. A later :meth:`EventIndex.update`
reads only the blocks after the last one indexed, after checking that block's hash is still
the chain's (a reorganized chain is re-read from the start). With ``cache_dir`` the index is
also kept on disk, one JSON file per chain and deployment, so a later process starts where
this one stopped. Decoded values are JSON-ready: addresses checksummed, ``bytes32`` as
``0x`` hex strings, integers as ints.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address
from web3 import Web3

from .awards import artifact_name
from .compile import compile_contracts
from .deploy import Deployment, _atomic_write_text
from .embedded import is_embedded
from .embedded import logs as embedded_logs
from .errors import LedgerError

__all__ = ["INDEX_FORMAT", "EventIndex", "cache_dir_default", "checksum", "fast_decode"]

INDEX_FORMAT = "medmesh-event-index/1"
#: Blocks per ``eth_getLogs`` request on a node.
_CHUNK = 50_000


@functools.lru_cache(maxsize=65536)
def checksum(address: str) -> str:
    """``to_checksum_address``, memoized (a history names few accounts, many times)."""
    return str(to_checksum_address(address))


def _static_word(typ: str, word: bytes) -> Any:
    if typ == "address":
        return checksum("0x" + word[12:].hex())
    if typ == "bool":
        return word[-1] == 1
    if typ.startswith("uint"):
        return int.from_bytes(word, "big")
    if typ.startswith("bytes"):
        return "0x" + word[: int(typ[5:])].hex()
    raise ValueError(typ)


_SIMPLE = ("address", "bool", "bytes32")


def is_static_simple(typ: str) -> bool:
    return typ in _SIMPLE or (typ.startswith("uint") and typ[4:].isdigit())


def fast_decode(types: list[str], data: bytes) -> list[Any]:
    """ABI-decode ``data``: word by word when every type is a static scalar (the common case,
    ~20x faster than eth_abi), else with eth_abi (then values as :func:`_value` makes them)."""
    if all(is_static_simple(t) for t in types) and len(data) >= 32 * len(types):
        return [_static_word(t, data[32 * i : 32 * i + 32]) for i, t in enumerate(types)]
    return [_value(t, v) for t, v in zip(types, abi_decode(types, data), strict=True)]


def _value(typ: str, value: Any) -> Any:
    if typ == "address":
        return checksum(value)
    if typ.startswith("bytes") and not typ.endswith("]"):
        return "0x" + bytes(value).hex()
    if typ.endswith("[]"):
        return [_value(typ[:-2], v) for v in value]
    return value


class _EventAbi:
    def __init__(self, contract: str, item: dict[str, Any]) -> None:
        self.contract = contract
        self.name = str(item["name"])
        inputs = item["inputs"]
        types = ",".join(i["type"] for i in inputs)
        self.topic = keccak(text=f"{self.name}({types})")
        self.indexed = [(i["name"], i["type"]) for i in inputs if i["indexed"]]
        self.data = [(i["name"], i["type"]) for i in inputs if not i["indexed"]]
        self.order = [i["name"] for i in inputs]
        self._data_types = [t for _, t in self.data]

    def decode(self, topics: list[bytes], data: bytes) -> dict[str, Any]:
        args: dict[str, Any] = {}
        for (name, typ), topic in zip(self.indexed, topics[1:], strict=True):
            args[name] = _static_word(typ, topic)
        if self.data:
            values = fast_decode(self._data_types, data)
            for (name, _), value in zip(self.data, values, strict=True):
                args[name] = value
        return {k: args[k] for k in self.order}


class EventIndex:
    """Decoded events of ``deployment`` on ``w3``, in chain order (see the module docstring).
    ``events`` holds dicts ``{"contract", "event", "block", "tx", "args"}``."""

    def __init__(
        self, w3: Web3, deployment: Deployment, cache_dir: Path | str | None = None
    ) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.cache_file = (
            Path(cache_dir)
            / f"{deployment.chain_id}-{deployment.addresses['RoundLedger'].lower()}.json"
            if cache_dir is not None
            else None
        )
        artifacts = compile_contracts()
        self._by_key: dict[tuple[str, bytes], _EventAbi] = {}
        for name, address in deployment.addresses.items():
            for item in artifacts[artifact_name(name)]["abi"]:
                if item.get("type") == "event":
                    abi = _EventAbi(name, item)
                    self._by_key[(address.lower(), abi.topic)] = abi
        self.events: list[dict[str, Any]] = []
        self.last_block = deployment.start_block - 1
        self.last_hash = ""
        self._load()

    # ------------------------------------------------------------------ cache

    def _signature(self) -> dict[str, Any]:
        return {
            "format": INDEX_FORMAT,
            "chain_id": self.deployment.chain_id,
            "addresses": {k: v.lower() for k, v in sorted(self.deployment.addresses.items())},
            "start_block": self.deployment.start_block,
            "genesis": self.deployment.genesis,
            # the events' signatures: a cache decoded with other ABIs is read again
            "topics": hashlib.sha256(
                b"".join(sorted({bytes(k[1]) for k in self._by_key}))
            ).hexdigest(),
        }

    def _load(self) -> None:
        if self.cache_file is None or not self.cache_file.exists():
            return
        try:
            doc = json.loads(self.cache_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # a torn or foreign cache: read the chain again
        if not isinstance(doc, dict) or doc.get("signature") != self._signature():
            return
        self.events = doc["events"]
        self.last_block = int(doc["last_block"])
        self.last_hash = str(doc["last_hash"])

    def _save(self) -> None:
        if self.cache_file is None:
            return
        doc = {
            "signature": self._signature(),
            "last_block": self.last_block,
            "last_hash": self.last_hash,
            "events": self.events,
        }
        _atomic_write_text(self.cache_file, json.dumps(doc, separators=(",", ":")))

    # ------------------------------------------------------------------ reading

    def _block_hash(self, number: int) -> str:
        return "0x" + bytes(self.w3.eth.get_block(number)["hash"]).hex()

    def update(self) -> EventIndex:
        """Index the blocks after the last one indexed, up to the head; returns self."""
        head = int(self.w3.eth.block_number)
        if self.last_hash and self.last_block >= self.deployment.start_block:
            if self.last_block > head or self._block_hash(self.last_block) != self.last_hash:
                self.events, self.last_block, self.last_hash = (
                    [],
                    self.deployment.start_block - 1,
                    "",
                )
        if head <= self.last_block:
            return self
        start = self.last_block + 1
        if is_embedded(self.w3):
            self._add_embedded(start)
        else:
            for lo in range(start, head + 1, _CHUNK):
                self._add_raw(lo, min(head, lo + _CHUNK - 1))
        self.last_block = head
        self.last_hash = self._block_hash(head)
        self._save()
        return self

    def _add(self, address: str, topics: list[bytes], data: bytes, block: int, tx: str) -> None:
        if not topics:
            return
        abi = self._by_key.get((address.lower(), topics[0]))
        if abi is None:
            return
        self.events.append(
            {
                "contract": abi.contract,
                "event": abi.name,
                "block": block,
                "tx": tx,
                "args": abi.decode(topics, data),
            }
        )

    def _add_embedded(self, start: int) -> None:
        wanted = {Web3.to_checksum_address(a) for a in self.deployment.addresses.values()}
        for log in embedded_logs(self.w3, wanted, start):
            topics = [bytes(t) for t in log["topics"]]
            self._add(
                log["address"],
                topics,
                bytes(log["data"]),
                log["blockNumber"],
                "0x" + bytes(log["transactionHash"]).hex(),
            )

    def _add_raw(self, lo: int, hi: int) -> None:
        params = {
            "address": sorted(a.lower() for a in self.deployment.addresses.values()),
            "fromBlock": hex(lo),
            "toBlock": hex(hi),
        }
        response = self.w3.provider.make_request("eth_getLogs", [params])  # type: ignore[arg-type]
        if "error" in response:
            raise LedgerError(f"eth_getLogs failed: {response['error']}")
        found = response["result"]
        found.sort(key=lambda lg: (int(lg["blockNumber"], 16), int(lg["logIndex"], 16)))
        for log in found:
            topics = [bytes.fromhex(t[2:]) for t in log["topics"]]
            self._add(
                log["address"],
                topics,
                bytes.fromhex(log["data"][2:]),
                int(log["blockNumber"], 16),
                log["transactionHash"],
            )


def cache_dir_default() -> Path:
    """``build/audit-cache`` in the repository (or ``$MEDMESH_AUDIT_CACHE``)."""
    from .compile import REPO_ROOT

    return Path(os.environ.get("MEDMESH_AUDIT_CACHE", REPO_ROOT / "build" / "audit-cache"))
