"""Connections to a chain: the embedded in-process chain or any JSON-RPC node, dev keys,
funding, time travel, and the persistence of the embedded chain.

:func:`save_state` writes a snapshot of the embedded chain's key-value store (see
:mod:`ledger.embedded`) with its head and the :class:`~ledger.deploy.Deployment` to one JSON
file; :func:`load_state` (or ``connect(state_file=...)``) rebuilds the same chain from it in
another process: same blocks, state, receipts and event logs. No transaction is replayed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import event_abi_to_log_topic
from web3 import Web3
from web3.types import TxParams, TxReceipt, Wei

from . import embedded
from .deploy import Deployment, _atomic_write_text, _read_json
from .embedded import EmbeddedProvider, embedded_web3, is_embedded
from .errors import LedgerError
from .integrity import StoreVerification, verify_store
from .tx import send

__all__ = [
    "event_topic",
    "ANVIL_CHAIN_ID",
    "STATE_FORMAT",
    "EmbeddedProvider",
    "advance_time",
    "connect",
    "dev_account",
    "fork_embedded",
    "fund",
    "get_logs",
    "is_embedded",
    "load_state",
    "read_state",
    "SavedChain",
    "sync_clock",
    "save_state",
]

ANVIL_CHAIN_ID = 31337
STATE_FORMAT = "medmesh-chain-state/1"
#: The well-known keys anvil (and hardhat) fund at start: mnemonic "test test ... junk".
_ANVIL_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
)


def connect(rpc: str | None = None, *, state_file: Path | str | None = None) -> Web3:
    """``rpc`` None: a fresh embedded chain (or, with ``state_file``, the one saved there);
    otherwise a JSON-RPC node at ``rpc``, checked to answer."""
    if state_file is not None:
        if rpc is not None:
            raise LedgerError("connect: give either rpc or state_file, not both")
        w3, _ = load_state(state_file)
        return w3
    if rpc is None:
        return embedded_web3()
    w3 = Web3(Web3.HTTPProvider(rpc, request_kwargs={"timeout": 30}))
    try:
        _ = w3.eth.chain_id
    except Exception as exc:
        raise LedgerError(
            f"no Ethereum JSON-RPC node answers at {rpc}: {type(exc).__name__}"
        ) from exc
    return w3


def dev_account(w3: Web3, index: int = 0) -> LocalAccount:
    """A funded development key: eth-tester's default key ``index`` on the embedded chain,
    anvil's well-known key ``index`` on chain id 31337."""
    if not 0 <= index < 10:
        raise LedgerError(f"dev_account: index {index} outside 0..9")
    if is_embedded(w3):
        return Account.from_key((index + 1).to_bytes(32, "big"))
    chain_id = w3.eth.chain_id
    if chain_id == ANVIL_CHAIN_ID:
        return Account.from_key(_ANVIL_KEYS[index])
    raise LedgerError(
        f"no development key is known for chain id {chain_id}; use a funded key of your own"
    )


def fund(w3: Web3, to: str, wei: int) -> TxReceipt:
    """Send ``wei`` from :func:`dev_account` to ``to``."""
    tx: TxParams = {"to": Web3.to_checksum_address(to), "value": Wei(int(wei))}
    return send(w3, dev_account(w3), tx, action="fund")


def advance_time(w3: Web3, seconds: int) -> int:
    """Move the chain's clock ``seconds`` ahead and mine a block there; returns its timestamp.
    Works on the embedded chain and on anvil (``evm_increaseTime`` + ``evm_mine``)."""
    if is_embedded(w3):
        tester = w3.provider.ethereum_tester  # type: ignore[attr-defined]
        target = int(w3.eth.get_block("latest")["timestamp"]) + int(seconds)
        tester.time_travel(target)
        return target
    w3.provider.make_request("evm_increaseTime", [int(seconds)])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    return int(w3.eth.get_block("latest")["timestamp"])


def sync_clock(w3: Web3) -> None:
    """Bring the embedded chain's clock up to wall-clock time by mining an empty block.

    A real chain (or anvil) produces blocks as time passes; the embedded one mines only on a
    transaction, so without this a deadline there would never pass while peers merely wait.
    A no-op on any JSON-RPC chain."""
    if not is_embedded(w3):
        return
    now = int(time.time())
    if int(w3.eth.get_block("latest")["timestamp"]) < now:
        w3.provider.ethereum_tester.time_travel(now)  # type: ignore[attr-defined]


def event_topic(contract: Any, name: str) -> bytes:
    """The topic of ``contract``'s event ``name``, from the compiled ABI (never a hand-written
    signature, which goes stale when the event gains a field)."""
    abi = next(
        (e for e in contract.abi if e.get("type") == "event" and e.get("name") == name), None
    )
    if abi is None:
        raise LedgerError(f"the contract at {contract.address} has no event {name}")
    return bytes(event_abi_to_log_topic(abi))


def get_logs(
    w3: Web3, addresses: list[str], from_block: int = 0, topics: list[bytes | None] | None = None
) -> list[dict[str, Any]]:
    """Every log emitted by ``addresses`` from ``from_block`` to the head, in chain order;
    with ``topics``, only those whose leading topics equal the given ones (None: any).

    On a node this is ``eth_getLogs``; on the embedded chain the receipts are read from py-evm."""
    wanted = {Web3.to_checksum_address(a) for a in addresses}
    if not is_embedded(w3):
        params: dict[str, Any] = {
            "address": sorted(wanted),
            "fromBlock": from_block,
            "toBlock": "latest",
        }
        if topics:
            params["topics"] = [None if t is None else "0x" + bytes(t).hex() for t in topics]
        found = w3.eth.get_logs(params)  # type: ignore[arg-type]
        return sorted(
            (dict(log) for log in found), key=lambda lg: (lg["blockNumber"], lg["logIndex"])
        )
    logs = embedded.logs(w3, wanted, from_block)
    if topics:
        logs = [
            lg
            for lg in logs
            if len(lg["topics"]) >= len(topics)
            and all(t is None or bytes(lg["topics"][i]) == bytes(t) for i, t in enumerate(topics))
        ]
    return logs


# --------------------------------------------------------------------------- persistence


def fork_embedded(w3: Web3) -> Web3:
    """An independent copy of an embedded chain (cheap: copies the key-value store)."""
    store, head = embedded.export_store(w3)
    return embedded.web3_from_store(store, head)


def save_state(w3: Web3, path: Path | str, deployment: Deployment) -> None:
    """Persist the embedded chain and ``deployment`` to ``path`` (JSON, written atomically)."""
    store, head = embedded.export_store(w3)
    header = w3.eth.get_block("latest")
    document = {
        "format": STATE_FORMAT,
        "saved_at": int(time.time()),
        "chain_id": w3.eth.chain_id,
        "head": {"number": int(header["number"]), "hash": "0x" + head.hex()},
        "deployment": deployment.to_dict(),
        "store": {
            "encoding": "zlib+base64 of (u32 klen, u32 vlen, key, value)*",
            "entries": len(store),
            "data": embedded.pack_store(store),
        },
    }
    _atomic_write_text(Path(path), json.dumps(document, indent=1) + "\n")


@dataclass
class SavedChain:
    """A chain-state file, read and verified (:func:`ledger.integrity.verify_store`) but not
    yet loaded into py-evm: ``verification.problems`` lists what is wrong with its store."""

    path: Path
    deployment: Deployment
    store: dict[bytes, bytes]
    head: bytes
    head_number: int
    chain_id: int
    verification: StoreVerification

    def checks(self) -> list[dict[str, Any]]:
        """The verification as audit checks (kind "integrity")."""
        v = self.verification
        summary = (
            f"{v.entries} entries; {v.blocks} headers chained to 0x{self.head.hex()}; "
            f"{v.trie_nodes} trie nodes, {v.accounts} accounts verified"
        )
        if v.problems:
            return [
                {"check": f"chain-state store: {p}", "ok": False, "detail": "", "kind": "integrity"}
                for p in v.problems
            ]
        name = "chain-state store verified: entries hash to their keys, headers chain to the head, tries complete"
        return [{"check": name, "ok": True, "detail": summary, "kind": "integrity"}]

    def web3(self) -> Web3:
        """The embedded chain over the verified store (refused if the verification failed)."""
        if not self.verification.ok:
            raise LedgerError(
                f"chain state {self.path} failed verification: {self.verification.problems[0]}"
            )
        w3 = embedded.web3_from_store(self.store, self.head)
        if w3.eth.chain_id != self.chain_id or w3.eth.block_number != self.head_number:
            raise LedgerError(f"chain state {self.path} does not rebuild the chain it describes")
        return w3


def read_state(path: Path | str) -> SavedChain:
    """Read a chain-state file written by :func:`save_state` and verify its store."""
    document = _read_json(Path(path), "chain state")
    if not isinstance(document, dict) or document.get("format") != STATE_FORMAT:
        raise LedgerError(f"{path} is not a medmesh chain state (format {STATE_FORMAT})")
    try:
        store = embedded.unpack_store(document["store"]["data"])
        head = bytes.fromhex(document["head"]["hash"][2:])
        head_number, chain_id = int(document["head"]["number"]), int(document["chain_id"])
    except (KeyError, TypeError, ValueError) as exc:
        raise LedgerError(f"chain state {path} is corrupt: {exc}") from exc
    deployment = Deployment.from_dict(document["deployment"])
    verification = verify_store(store, head)
    if verification.ok and verification.blocks != head_number + 1:
        held = verification.blocks - 1
        verification.problems.append(
            f"the file says head block {head_number}, its store holds {held}"
        )
    return SavedChain(Path(path), deployment, store, head, head_number, chain_id, verification)


def load_state(path: Path | str) -> tuple[Web3, Deployment]:
    """Rebuild the embedded chain saved by :func:`save_state`, after verifying its store;
    returns it and its deployment."""
    saved = read_state(path)
    return saved.web3(), saved.deployment
