"""Reads that the clients of one embedded chain share, for many members in one process.

``medmesh simulate`` (:mod:`node.sim.consortium`) runs N members in one process, each with its
own :class:`~ledger.client.LedgerClient`, on one embedded chain. Whatever one member reads in
O(1) per block, the process then reads N times per block, and a round mines about 3N blocks:
every member waiting for finalization re-read the head block and the round's state whenever a
block was mined, and every member's first committee draw read every member's slot. In one
process those reads grow as N², where one member per process pays its own O(N).

:func:`share_reads` turns sharing on for one embedded chain (the simulator does); the
clients created on it afterwards then share:

- the head: read from py-evm's canonical head, no web3 round trip (:func:`head_hash`);
- the decoded answer of every view call, per head block (:meth:`SharedReads.call`). eth-tester
  runs a call on the latest block in that block's state and header, which no later
  transaction changes (it mines a new block), so the answer is a function of the head's hash,
  the call and its sender: the premise of :class:`~ledger.embedded.EmbeddedProvider`'s own
  cache, which still paid web3's encoding, middleware and decoding on every read;
- the member directory (``identities()``), per storage root of the registry
  (:meth:`SharedReads.per_storage`);
- the registry's slots, per membership epoch (:class:`~ledger.committee.SlotBook`);
- the vote events of the round ledger (:class:`~ledger.attestlog.VoteIndex`), which are the
  chain's, not the client's.

No transaction, vote or check changes: every answer is the one the client would have read at
the same head. Without :func:`share_reads` (a node process, anvil, any JSON-RPC node) nothing
is shared and every client reads for itself, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from web3 import Web3

from .embedded import backend, is_embedded

__all__ = ["SharedReads", "head_hash", "share_reads", "shared_reads"]


class SharedReads:
    """What the clients of one embedded chain share: view answers per head, slot books per
    membership epoch, vote indexes per round ledger."""

    def __init__(self, w3: Web3) -> None:
        self._w3 = w3
        self._head = b""
        self._answers: dict[tuple[Any, ...], Any] = {}
        #: registry address -> membership epoch -> account (lower) -> ActiveSlot
        self.slots: dict[str, dict[int, dict[str, Any]]] = {}
        #: (round ledger address, start block) -> VoteIndex
        self.vote_indexes: dict[tuple[str, int], Any] = {}
        #: contract address (lower) -> (storage root, answers): see per_storage
        self._storage: dict[str, tuple[bytes, dict[tuple[Any, ...], Any]]] = {}
        self.hits = 0  # answers served from the memo (tests, profiling)
        self.misses = 0

    def head(self) -> bytes:
        """The canonical head's hash, from py-evm (what ``get_block("latest")`` would name)."""
        return bytes(backend(self._w3).chain.get_canonical_head().hash)

    def call(self, fn: Any, read: Callable[[], Any]) -> Any:
        """``read()`` (the view call ``fn`` on the latest block), answered once per head block
        and call; a revert raises every time and is not kept."""
        key = (str(fn.address), fn._encode_transaction_data(), str(self._w3.eth.default_account))
        return self.per_head(key, read)

    def per_head(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """``build()``, a function of the head block's state alone (a view's answer, or a value
        made from views' answers), built once per head block and ``key``."""
        head = self.head()
        if head != self._head:
            self._head, self._answers = head, {}
        answers = self._answers
        if key in answers:
            self.hits += 1
            return _fresh(answers[key])  # a caller may change what it was given
        self.misses += 1
        value = build()
        if self._head == head and self.head() == head:  # no block came meanwhile (a thread)
            answers[key] = value
            return _fresh(value)
        return value

    def per_storage(self, address: str, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """``build()``, made from views of the contract at ``address`` alone, built once per
        storage root of that contract where the chain keeps its reads by storage
        (:meth:`ledger.embedded.EmbeddedProvider.keep_reads_by_storage`: the registry, whose
        views read nothing but its own storage), else once per head block. Members read the
        member directory between other members' transactions: keyed by the head, those
        reads never meet, and each costs a decoding of every identity."""
        root = self._w3.provider.storage_root(address)  # type: ignore[attr-defined]
        if root is None:
            return self.per_head(key, build)
        if self._storage.get(address.lower(), (b"", {}))[0] != root:
            self._storage[address.lower()] = (root, {})
        answers = self._storage[address.lower()][1]
        if key in answers:
            self.hits += 1
            return _fresh(answers[key])
        self.misses += 1
        value = build()
        if self._w3.provider.storage_root(address) == root:  # type: ignore[attr-defined]
            answers[key] = value
            return _fresh(value)
        return value


def _fresh(value: Any) -> Any:
    """A copy of a decoded answer whose lists and dicts are new (immutable parts are shared)."""
    if isinstance(value, list):
        return [_fresh(v) for v in value]
    if isinstance(value, dict):
        return {k: _fresh(v) for k, v in value.items()}
    if isinstance(value, tuple):
        items = [_fresh(v) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        make = getattr(value, "_make", None)  # web3's decoded structs are named tuples
        return make(items) if make is not None else tuple(items)
    return value


def share_reads(w3: Web3) -> SharedReads:
    """Share reads among the clients created on embedded ``w3`` from now on (idempotent)."""
    if not is_embedded(w3):
        raise ValueError("shared reads are for the embedded chain only")
    shared = shared_reads(w3)
    if shared is None:  # held by the provider: forgotten with the chain
        shared = w3.provider.shared_reads = SharedReads(w3)  # type: ignore[attr-defined]
    return shared


def shared_reads(w3: Web3) -> SharedReads | None:
    """The reads shared on ``w3``'s chain, or None (each client reads for itself)."""
    shared: SharedReads | None = getattr(w3.provider, "shared_reads", None)
    return shared


def head_hash(w3: Web3) -> bytes:
    """The latest block's hash: from py-evm where reads are shared, else ``get_block``."""
    shared = shared_reads(w3)
    if shared is not None:
        return shared.head()
    return bytes(w3.eth.get_block("latest")["hash"])
