"""Verify a saved embedded chain before anything reads it.

A chain-state file carries py-evm's whole key-value store. Nothing in it is trusted: this
module checks that the store is exactly a chain of blocks ending at the file's head, in the
way an Ethereum client checks data it receives (the Merkle-Patricia trie of the Yellow Paper,
Wood 2014, appendix D; block headers chained by parent hash, section 4.3):

- every entry stored under a 32-byte key (trie node, block header, contract code, uncle list)
  hashes to its key: ``keccak256(value) == key``;
- the headers chain from the head down to block 0: each header's parent hash is the hash of
  the header one number below;
- every block's transaction and receipt tries, and the state trie of every block with each
  account's storage trie and code, are complete below their roots. Since each node was found
  under its own hash, walking a trie from the root recomputes that root: the state, the
  receipts (hence the event logs) and the transactions are those the headers commit to;
- the few other entries (py-evm's canonical-chain, score, gap and transaction-lookup indexes)
  equal what the verified headers and bodies imply; any other entry is refused.

What this cannot prove: that the head itself is the consortium's. A forger can build a whole
new consistent chain; only an anchor from outside the file (the genesis hash, a head a member
attested, see :mod:`ledger.anchors`) tells the two apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import rlp
from eth_utils import keccak

__all__ = ["StoreVerification", "verify_store"]

_BLANK_ROOT = keccak(rlp.encode(b""))
_EMPTY_CODE = keccak(b"")
_EMPTY_UNCLES = keccak(rlp.encode([]))
#: Problems listed per kind before the rest are only counted.
_SHOWN = 3

_CANONICAL_HEAD = b"v1:canonical_head_hash"
_GAP_KEYS = (b"v1:header_chain_gaps", b"v1:chain_gaps")
_NUMBER_PREFIX = b"block-number-to-hash:"
_SCORE_PREFIX = b"block-hash-to-score:"
_TX_PREFIX = b"transaction-hash-to-block:"


@dataclass
class StoreVerification:
    """What :func:`verify_store` found: counts of what it verified, and each problem as one line."""

    blocks: int = 0
    entries: int = 0
    trie_nodes: int = 0
    accounts: int = 0
    genesis: bytes = b""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _children(node: list[Any]) -> Iterator[Any]:
    """The child references of a decoded node (32-byte hashes or inline nodes), and
    ``("value", v)`` for each value it holds."""
    if len(node) == 17:
        yield from (c for c in node[:16] if c != b"")
        if node[16] != b"":
            yield ("value", node[16])
    elif len(node) == 2:
        path = node[0]
        if not path:
            raise ValueError("a short node without a path")
        if path[0] >> 4 in (2, 3):  # hex-prefix flag: a leaf
            yield ("value", node[1])
        else:
            yield node[1]
    else:
        raise ValueError(f"a trie node of {len(node)} items")


def _walk_trie(
    store: dict[bytes, bytes],
    root: bytes,
    seen: set[bytes],
    on_value: Callable[[bytes], None],
    what: str,
) -> list[str]:
    """Visit every node below ``root`` not in ``seen`` (shared subtries are walked once),
    calling ``on_value`` with each value; problems as lines. Nodes of ≥ 32 bytes are stored
    under their hash (checked for all entries by :func:`verify_store`); shorter ones inline."""
    if root == _BLANK_ROOT or root in seen:
        return []
    problems: list[str] = []
    stack: list[Any] = [root]
    while stack:
        ref = stack.pop()
        if isinstance(ref, tuple):
            on_value(ref[1])
            continue
        if isinstance(ref, bytes):
            if len(ref) != 32:
                problems.append(f"{what}: a malformed node reference {_hex(ref)}")
                continue
            if ref in seen:
                continue
            seen.add(ref)
            raw = store.get(ref)
            if raw is None:
                problems.append(f"{what}: trie node {_hex(ref)} is missing")
                continue
            try:
                node = rlp.decode(raw)
            except rlp.exceptions.DecodingError:
                problems.append(f"{what}: trie node {_hex(ref)} is not RLP")
                continue
        else:
            node = ref
        try:
            stack.extend(_children(node))
        except (ValueError, TypeError, IndexError) as exc:
            problems.append(f"{what}: trie node is malformed ({exc})")
    return problems


def _check_entries(store: dict[bytes, bytes], out: StoreVerification) -> None:
    bad = [k for k, v in store.items() if len(k) == 32 and keccak(v) != k]
    for key in sorted(bad)[:_SHOWN]:
        out.problems.append(
            f"store entry {_hex(key)} does not hash to its key: its value was edited"
        )
    if len(bad) > _SHOWN:
        out.problems.append(
            f"... and {len(bad) - _SHOWN} more store entries that do not hash to their keys"
        )
    known = (_NUMBER_PREFIX, _SCORE_PREFIX, _TX_PREFIX)
    odd = [
        k
        for k in store
        if len(k) != 32 and k != _CANONICAL_HEAD and k not in _GAP_KEYS and not k.startswith(known)
    ]
    for key in sorted(odd)[:_SHOWN]:
        out.problems.append(f"store entry {key[:60]!r} is of no kind py-evm writes")
    out.entries = len(store)


def _headers(store: dict[bytes, bytes], head: bytes, out: StoreVerification) -> list[Any]:
    """The headers from block 0 to ``head``, chained by parent hash; [] with a problem if not."""
    from eth.db.header import _decode_block_header

    chain: list[Any] = []
    wanted, number = head, None
    while True:
        raw = store.get(wanted)
        if raw is None:
            out.problems.append(
                f"header {_hex(wanted)} (block {number if number is not None else 'head'}) is missing"
            )
            return []
        try:
            header = _decode_block_header(raw)
        except Exception as exc:  # rlp/py-evm raise several kinds on a malformed header
            out.problems.append(f"header {_hex(wanted)} does not decode: {type(exc).__name__}")
            return []
        if number is not None and header.block_number != number:
            out.problems.append(
                f"header {_hex(wanted)} says block {header.block_number}, its child says {number}"
            )
            return []
        chain.append(header)
        if header.block_number == 0:
            break
        wanted, number = header.parent_hash, header.block_number - 1
    chain.reverse()
    return chain


def _expect(
    store: dict[bytes, bytes], key: bytes, value: bytes, what: str, out: StoreVerification
) -> None:
    if store.get(key) != value:
        out.problems.append(f"{what} in the store disagrees with the verified headers")


def _check_indexes(
    store: dict[bytes, bytes],
    head: bytes,
    headers: list[Any],
    txs: dict[bytes, bytes],
    out: StoreVerification,
) -> None:
    """py-evm's lookup entries must be exactly those the verified chain implies."""
    _expect(store, _CANONICAL_HEAD, head, "the canonical head", out)
    score = 0
    for h in headers:
        number = h.block_number
        canonical = _NUMBER_PREFIX + str(number).encode()
        _expect(store, canonical, rlp.encode(h.hash), f"block {number}'s canonical hash", out)
        score += h.difficulty or number  # py-evm's score rule (HeaderDB._set_hash_scores_to_db)
        _expect(
            store,
            _SCORE_PREFIX + repr(h.hash).encode(),
            rlp.encode(score),
            f"block {number}'s score",
            out,
        )
    from eth.rlp.sedes import chain_gaps

    gaps = rlp.encode(((), len(headers)), sedes=chain_gaps)  # no gaps; the next block to come
    for key in _GAP_KEYS:
        _expect(store, key, gaps, key.decode(), out)
    numbers = {_NUMBER_PREFIX + str(h.block_number).encode() for h in headers}
    scores = {_SCORE_PREFIX + repr(h.hash).encode() for h in headers}
    extra = [
        k
        for k in store
        if (k.startswith(_NUMBER_PREFIX) and k not in numbers)
        or (k.startswith(_SCORE_PREFIX) and k not in scores)
        or (k.startswith(_TX_PREFIX) and k not in txs)
    ]
    if extra:
        out.problems.append(
            f"{len(extra)} index entries in the store name nothing in the verified chain"
        )
    wrong = [k for k, v in txs.items() if store.get(k) != v]
    if wrong:
        out.problems.append(
            f"{len(wrong)} transaction lookups in the store disagree with the verified blocks"
        )


def verify_store(store: dict[bytes, bytes], head: bytes) -> StoreVerification:
    """Check that ``store`` holds exactly a verified chain ending at ``head`` (see the module
    docstring); ``problems`` lists what is wrong, one line each."""
    out = StoreVerification()
    _check_entries(store, out)
    if out.problems:  # what the rest would read is already untrustworthy
        return out
    headers = _headers(store, head, out)
    if not headers:
        return out
    out.genesis, out.blocks = headers[0].hash, len(headers)
    seen: set[bytes] = set()
    txs: dict[bytes, bytes] = {}
    accounts: list[bytes] = []
    for h in headers:
        number = h.block_number
        leaves: list[bytes] = []
        out.problems += _walk_trie(
            store, h.transaction_root, set(), leaves.append, f"block {number}'s transactions"
        )
        for index, encoded in enumerate(_in_key_order(store, h.transaction_root, leaves)):
            txs[_TX_PREFIX + repr(keccak(encoded)).encode()] = rlp.encode([number, index])
        out.problems += _walk_trie(
            store, h.receipt_root, seen, lambda _v: None, f"block {number}'s receipts"
        )
        withdrawals = getattr(h, "withdrawals_root", _BLANK_ROOT)
        out.problems += _walk_trie(
            store, withdrawals, seen, lambda _v: None, f"block {number}'s withdrawals"
        )
        if h.uncles_hash != _EMPTY_UNCLES and h.uncles_hash not in store:
            out.problems.append(f"block {number}'s uncles {_hex(h.uncles_hash)} are missing")
        out.problems += _walk_trie(
            store, h.state_root, seen, accounts.append, f"block {number}'s state"
        )
    out.trie_nodes = len(seen)
    storage_seen: set[bytes] = set()
    for encoded in set(accounts):
        try:
            _nonce, _balance, storage_root, code_hash = rlp.decode(encoded)
        except (rlp.exceptions.DecodingError, ValueError):
            out.problems.append("an account in the state trie is not an RLP account")
            continue
        out.problems += _walk_trie(
            store, storage_root, storage_seen, lambda _v: None, "an account's storage"
        )
        if code_hash != _EMPTY_CODE and code_hash not in store:
            out.problems.append(f"contract code {_hex(code_hash)} is missing")
    out.accounts = len(set(accounts))
    _check_indexes(store, head, headers, txs, out)
    return out


def _in_key_order(store: dict[bytes, bytes], root: bytes, leaves: list[bytes]) -> list[bytes]:
    """A block's transactions in index order, read through py-trie (the walk above has
    verified every node under ``root``)."""
    if not leaves:
        return []
    from trie import HexaryTrie

    trie = HexaryTrie(store, root)
    try:
        ordered = [trie[rlp.encode(i)] for i in range(len(leaves))]
    except Exception:  # py-trie raises its own kinds on a malformed trie
        return []
    return ordered if sorted(ordered) == sorted(leaves) else []
