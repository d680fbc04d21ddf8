"""The embedded chain: eth-tester's ``PyEVMBackend`` behind web3, and snapshots of it.

py-evm keeps every block, receipt and state trie node of a chain in one key-value store (an
``AtomicDB`` over a ``MemoryDB``). A snapshot is a copy of that store plus the canonical head;
:func:`web3_from_store` rebuilds eth-tester's chain class over such a copy, which then has the
same blocks, state, receipts and logs and can go on mining. Nothing is replayed.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import struct
import weakref
import zlib
from collections.abc import Callable, Collection
from typing import Any, cast

from eth_abi import encode as abi_encode
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider
from web3.types import RPCEndpoint, RPCResponse

from .errors import LedgerError

__all__ = [
    "EmbeddedProvider",
    "backend",
    "embedded_web3",
    "export_store",
    "is_embedded",
    "logs",
    "pack_store",
    "unpack_store",
    "web3_from_store",
]


def is_embedded(w3: Web3) -> bool:
    """Whether ``w3`` is an in-process eth-tester chain."""
    return isinstance(w3.provider, EthereumTesterProvider)


class _RevertData(Exception):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.data = data


def _revert_bytes(exc: Exception) -> bytes:
    """The revert data behind eth-tester's ``TransactionFailed``, whose argument is py-evm's
    ``Revert(data)`` (estimateGas), ``str(Revert(data))`` (call) or an ``Error(string)`` reason."""
    raw: Any = exc.args[0] if exc.args else b""
    if isinstance(raw, Exception):
        raw = raw.args[0] if raw.args else b""
    if isinstance(raw, str):
        text = raw.strip()
        if text[:2] in ("b'", 'b"'):
            with contextlib.suppress(ValueError, SyntaxError):
                raw = ast.literal_eval(text)
        if isinstance(raw, str):  # a decoded Error(string) reason: encode it back
            return bytes.fromhex("08c379a0") + abi_encode(["string"], [raw])
    return bytes(raw) if isinstance(raw, (bytes, bytearray)) else b""


def _keep_revert_data(delegator: Callable[..., Any]) -> Callable[..., Any]:
    def delegate(tester: Any, params: Any) -> Any:
        from eth_tester.exceptions import TransactionFailed

        try:
            return delegator(tester, params)
        except TransactionFailed as exc:
            raise _RevertData(_revert_bytes(exc)) from None

    return delegate


class EmbeddedProvider(EthereumTesterProvider):
    """web3's eth-tester provider, answering reverts of ``eth_call``/``eth_estimateGas`` the way
    a JSON-RPC node does (error code 3 with the revert data). web3's stock provider turns the
    data into a string, so custom errors could not be decoded; with this one web3 raises
    ``ContractCustomError`` carrying the selector data on the embedded chain as on anvil."""

    def __init__(self, ethereum_tester: Any = None) -> None:
        from web3.providers.eth_tester.defaults import API_ENDPOINTS

        endpoints = {namespace: dict(methods) for namespace, methods in API_ENDPOINTS.items()}
        for name in ("call", "estimateGas"):
            endpoints["eth"][name] = _keep_revert_data(endpoints["eth"][name])
        super().__init__(ethereum_tester, api_endpoints=endpoints)
        #: answers of ``eth_call`` on the latest block, for that block's hash only (make_request)
        self._calls: tuple[bytes, dict[str, Any]] = (b"", {})
        #: contracts whose views read their own storage only: address -> (storage root, answers)
        self._by_storage: dict[str, tuple[bytes, dict[str, Any]]] = {}
        #: the reads the clients of this chain share (ledger.shared.share_reads), or None
        self.shared_reads: Any = None

    def keep_reads_by_storage(self, address: str) -> None:
        """Keep ``eth_call`` answers of the contract at ``address`` for as long as its storage
        root stays the same, across blocks. Exact only for a contract whose views read nothing
        but its own storage and code (no block, transaction or caller fields, no calls out):
        the registry's (``tests/integration/test_embedded_reads.py`` checks it). A consortium in
        one process mines a block per transaction, and every member reads the registry between
        other members' transactions: keyed by head, those reads never meet."""
        self._by_storage.setdefault(address.lower(), (b"", {}))

    def storage_root(self, address: str) -> bytes | None:
        """The storage root of the contract at ``address`` in the latest block, if its reads
        are kept by storage (:meth:`keep_reads_by_storage`); else None."""
        from eth.rlp.accounts import Account
        from eth_utils import keccak, to_canonical_address
        from rlp import decode
        from trie import HexaryTrie

        if address.lower() not in self._by_storage:
            return None
        chain = cast(Any, self.ethereum_tester).backend.chain
        state_root = chain.get_canonical_head().state_root
        raw = HexaryTrie(chain.chaindb.db, state_root)[keccak(to_canonical_address(address))]
        return bytes(decode(raw, sedes=Account).storage_root)

    def _answers(self, call: Any) -> dict[str, Any]:
        """The cache an ``eth_call`` on the latest block belongs to (see keep_reads_by_storage)."""
        chain = cast(Any, self.ethereum_tester).backend.chain
        to = str(call.get("to") or "").lower()
        if to in self._by_storage:
            root = self.storage_root(to) or b""
            if self._by_storage[to][0] != root:
                self._by_storage[to] = (root, {})
            return self._by_storage[to][1]
        head = bytes(chain.get_canonical_head().hash)
        if self._calls[0] != head:
            self._calls = (head, {})
        return self._calls[1]

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        if method == "eth_call" and len(params) == 2 and params[1] == "latest":
            return self._latest_call(params)
        return self._request(method, params)

    def _latest_call(self, params: Any) -> RPCResponse:
        """An ``eth_call`` on the latest block, answered once per block and call: eth-tester runs
        it in the state and header of the latest mined block, which no later transaction
        changes (it mines a new block), so the answer is a function of that block's hash and
        the call. Peers that share one embedded chain read the same views at the same head
        (the round, its quorum, the registry) many times a round; each read costs a full EVM
        execution behind web3's formatting. Only results are kept, never reverts."""
        answers = self._answers(params[0])
        key = repr(params[0])
        cached = answers.get(key)
        if cached is not None:
            self._current_request_id += 1
            return cast(
                RPCResponse, {"jsonrpc": "2.0", "id": self._current_request_id, "result": cached}
            )
        response = self._request(RPCEndpoint("eth_call"), params)
        if "result" in response and "error" not in response:
            answers[key] = response["result"]
        return response

    def _request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        try:
            return super().make_request(method, params)
        except _RevertData as exc:
            self._current_request_id += 1
            error = {"code": 3, "message": "execution reverted", "data": "0x" + exc.data.hex()}
            return cast(
                RPCResponse, {"jsonrpc": "2.0", "id": self._current_request_id, "error": error}
            )


def embedded_web3(tester: Any = None) -> Web3:
    """A Web3 over :class:`EmbeddedProvider` (``tester``: an ``EthereumTester``; None: a fresh
    chain) whose calls name the sender they would be given anyway. eth-tester fills a call's
    missing ``from`` with its first dev account, asking for the account list three times per
    call (a fifth of a call's time); naming that account as the default sender once gives the
    same ``from`` without asking."""
    w3 = Web3(EmbeddedProvider(tester))
    w3.eth.default_account = w3.eth.accounts[0]
    return w3


def backend(w3: Web3) -> Any:
    """The ``PyEVMBackend`` behind an embedded ``w3``."""
    if not is_embedded(w3):
        raise LedgerError(
            "chain state can be saved only for the embedded chain; a node keeps its own"
        )
    return w3.provider.ethereum_tester.backend  # type: ignore[attr-defined]


def export_store(w3: Web3) -> tuple[dict[bytes, bytes], bytes]:
    """A copy of the chain's key-value store, and its canonical head hash."""
    chain = backend(w3).chain
    if chain.get_block().transactions:
        raise LedgerError("the embedded chain has unmined transactions; mine them before saving")
    store = chain.chaindb.db.wrapped_db.kv_store
    return dict(store), chain.get_canonical_head().hash


def web3_from_store(store: dict[bytes, bytes], head: bytes) -> Web3:
    """An embedded chain over ``store`` (used as is, not copied), checked to have head ``head``."""
    from eth.db.atomic import AtomicDB
    from eth.db.backends.memory import MemoryDB
    from eth_tester import EthereumTester, PyEVMBackend

    fresh = PyEVMBackend()  # brings eth-tester's chain class (its VMs, chain id) and dev keys
    fresh.chain = type(fresh.chain)(AtomicDB(MemoryDB(store)))
    if fresh.chain.get_canonical_head().hash != head:
        raise LedgerError(
            "chain state is inconsistent: its stored head differs from the canonical head"
        )
    return embedded_web3(EthereumTester(fresh))


def pack_store(store: dict[bytes, bytes]) -> str:
    """The store as zlib-compressed, base64-encoded (u32 key length, u32 value length, key, value)*."""
    parts: list[bytes] = []
    for key in sorted(store):
        value = store[key]
        parts.append(struct.pack(">II", len(key), len(value)))
        parts.append(key)
        parts.append(value)
    return base64.b64encode(zlib.compress(b"".join(parts), 6)).decode("ascii")


def unpack_store(blob: str) -> dict[bytes, bytes]:
    """Inverse of :func:`pack_store`; raises ValueError on damaged data."""
    try:
        raw = zlib.decompress(base64.b64decode(blob, validate=True))
        store: dict[bytes, bytes] = {}
        pos = 0
        while pos < len(raw):
            klen, vlen = struct.unpack_from(">II", raw, pos)
            pos += 8
            if pos + klen + vlen > len(raw):
                raise ValueError("truncated key-value store")
            store[raw[pos : pos + klen]] = raw[pos + klen : pos + klen + vlen]
            pos += klen + vlen
    except (zlib.error, struct.error) as exc:
        raise ValueError(f"damaged key-value store: {exc}") from exc
    return store


def logs(w3: Web3, wanted: Collection[str], from_block: int) -> list[dict[str, Any]]:
    """Logs of the ``wanted`` (checksum) addresses from ``from_block`` on, read from the
    blocks' receipts in py-evm: eth-tester's ``eth_getLogs`` finds each receipt by scanning
    every block, which is quadratic in the chain's length. A block's logs are decoded once and
    kept by block hash (a block's receipts never change; a block no longer canonical is simply
    not looked up again), so a read costs one canonical-hash lookup per block."""
    chain = backend(w3).chain
    cache = _BLOCK_LOGS.setdefault(chain, {})
    found: list[dict[str, Any]] = []
    for number in range(max(0, from_block), chain.get_canonical_head().block_number + 1):
        block_hash = chain.chaindb.get_canonical_block_hash(number)
        block_logs = cache.get(block_hash)
        if block_logs is None:
            block_logs = cache[block_hash] = _decode_block_logs(chain, block_hash)
        found.extend(dict(log) for log in block_logs if log["address"] in wanted)
    return found


#: per chain (forgotten with it), every log of a block by the block's hash, decoded once
_BLOCK_LOGS: weakref.WeakKeyDictionary[Any, dict[bytes, list[dict[str, Any]]]] = (
    weakref.WeakKeyDictionary()
)


def _decode_block_logs(chain: Any, block_hash: bytes) -> list[dict[str, Any]]:
    from hexbytes import HexBytes

    block = chain.get_block_by_hash(block_hash)
    decoded: list[dict[str, Any]] = []
    log_index = 0
    for tx_index, (tx, receipt) in enumerate(
        zip(block.transactions, block.get_receipts(chain.chaindb), strict=True)
    ):
        for log in receipt.logs:
            decoded.append(
                {
                    "address": Web3.to_checksum_address(log.address),
                    "topics": [HexBytes(t.to_bytes(32, "big")) for t in log.topics],
                    "data": HexBytes(log.data),
                    "blockNumber": block.number,
                    "blockHash": HexBytes(block.hash),
                    "transactionHash": HexBytes(tx.hash),
                    "transactionIndex": tx_index,
                    "logIndex": log_index,
                    "removed": False,
                }
            )
            log_index += 1
    return decoded
