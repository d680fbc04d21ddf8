"""Anchors: facts from outside the audited chain that tie it to the consortium's history.

A chain handed to an auditor (a chain-state file, or a node that answers JSON-RPC) can be a
forgery that is internally consistent: a fresh anvil replaying a fake history under the same
chain id and the same contract addresses, or a saved chain re-mined after its last round was
rewritten. Nothing inside such a chain can tell; an anchor from outside can:

- the genesis hash, written into the deployment file at deploy time, or given as
  ``--expect-genesis``;
- a block the auditor knows, ``--expect-head NUMBER:HASH``;
- a member's signed attestation record, ``--expect-head RECORD.json``: the raw attest
  transaction a member signed (:meth:`ledger.client.LedgerClient.attest` keeps it). Its
  signature names the member, its calldata the round, the RoundLedger and the chain head
  (number, hash) the member saw when it voted; the contract checked that head with
  ``blockhash``. On the audited chain that block must have that hash and the transaction
  must be included. One honest member's record is enough to expose a rewritten history up
  to the head it saw, and a deployment file that names another RoundLedger.

Each attestation on the chain also carries the head its member saw; the audit checks those
heads too (a chain spliced from two histories fails there).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rlp
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector, keccak
from web3 import Web3

from .deploy import Deployment, _atomic_write_text, _read_json
from .embedded import is_embedded
from .errors import LedgerError

__all__ = [
    "RECORD_FORMAT",
    "AttestationRecord",
    "HeadAnchor",
    "block_hashes",
    "check_anchors",
    "check_attested_heads",
    "parse_genesis",
    "parse_head",
    "read_record",
    "write_record",
]

RECORD_FORMAT = "medmesh-attestation-record/1"
_ATTEST_TYPES = [
    "uint256",
    "bytes32",
    "uint256",
    "uint256",
    "bytes32",
]  # round, aggregate, mask, seen
_ATTEST = f"attest({','.join(_ATTEST_TYPES)})"

Check = Callable[..., None]


@dataclass(frozen=True)
class HeadAnchor:
    """Block ``number`` must have hash ``hash`` on the audited chain."""

    number: int
    hash: bytes


@dataclass(frozen=True)
class AttestationRecord:
    """A member's signed attest transaction, decoded: every field comes from the signed bytes."""

    raw: bytes
    tx_hash: bytes
    sender: str
    chain_id: int | None
    round_ledger: str
    round: int
    aggregate_hash: bytes
    seen: HeadAnchor

    @classmethod
    def from_raw(cls, raw: bytes) -> AttestationRecord:
        """Decode (and recover the signer of) a raw signed attest transaction."""
        try:
            if raw and raw[0] <= 0x7F:  # EIP-2718 typed: 1 (access list) or 2 (EIP-1559)
                items = rlp.decode(raw[1:])
                if raw[0] not in (1, 2):
                    raise ValueError(f"transaction type {raw[0]}")
                chain_id: int | None = int.from_bytes(items[0], "big")
                to, data = (items[4], items[6]) if raw[0] == 1 else (items[5], items[7])
            else:
                items = rlp.decode(raw)
                v = int.from_bytes(items[6], "big")
                chain_id, to, data = ((v - 35) // 2 if v >= 35 else None), items[3], items[5]
            sender = Account.recover_transaction(raw)
        except Exception as exc:  # rlp, eth-account and eth-keys raise several kinds
            raise LedgerError(f"not a signed transaction: {type(exc).__name__}: {exc}") from exc
        selector = function_signature_to_4byte_selector(_ATTEST)
        if len(to) != 20 or bytes(data[:4]) != selector:
            raise LedgerError("the signed transaction is not a RoundLedger attest call")
        try:
            rnd, aggregate, _accepted, number, head = abi_decode(_ATTEST_TYPES, bytes(data[4:]))
        except Exception as exc:
            raise LedgerError(f"the attest call data does not decode: {exc}") from exc
        return cls(
            raw=raw,
            tx_hash=keccak(raw),
            sender=Web3.to_checksum_address(sender),
            chain_id=chain_id,
            round_ledger=Web3.to_checksum_address(to),
            round=int(rnd),
            aggregate_hash=bytes(aggregate),
            seen=HeadAnchor(int(number), bytes(head)),
        )


def write_record(path: str | os.PathLike[str], raw: bytes) -> AttestationRecord:
    """Save a member's signed attest transaction as a record file (JSON, written atomically);
    the decoded fields beside the raw bytes are for people: :func:`read_record` re-derives them."""
    record = AttestationRecord.from_raw(raw)
    document = {
        "format": RECORD_FORMAT,
        "account": record.sender,
        "round": record.round,
        "round_ledger": record.round_ledger,
        "seen_number": record.seen.number,
        "seen_head": "0x" + record.seen.hash.hex(),
        "tx_hash": "0x" + record.tx_hash.hex(),
        "raw_tx": "0x" + raw.hex(),
    }
    _atomic_write_text(Path(path), json.dumps(document, indent=2) + "\n")
    return record


def read_record(path: str | os.PathLike[str]) -> AttestationRecord:
    """A record file written by :func:`write_record`; only its signed bytes are trusted."""
    document = _read_json(Path(path), "attestation record")
    if not isinstance(document, dict) or document.get("format") != RECORD_FORMAT:
        raise LedgerError(f"{path} is not a medmesh attestation record (format {RECORD_FORMAT})")
    try:
        raw = bytes.fromhex(str(document["raw_tx"]).removeprefix("0x"))
    except (KeyError, ValueError) as exc:
        raise LedgerError(f"attestation record {path} has no raw_tx hex: {exc}") from exc
    try:
        return AttestationRecord.from_raw(raw)
    except LedgerError as exc:
        raise LedgerError(f"attestation record {path}: {exc}") from exc


def _hash32(text: str, what: str) -> bytes:
    try:
        value = bytes.fromhex(text.strip().removeprefix("0x"))
    except ValueError:
        value = b""
    if len(value) != 32:
        raise LedgerError(f"{what} must be a 32-byte hex hash, got {text!r}")
    return value


def parse_genesis(text: str) -> bytes:
    """``--expect-genesis HASH``."""
    return _hash32(text, "--expect-genesis")


def parse_head(text: str) -> HeadAnchor | AttestationRecord:
    """``--expect-head``: ``NUMBER:HASH``, or the path of a member's attestation record."""
    number, sep, value = text.partition(":")
    if sep and number.strip().isdigit():
        return HeadAnchor(int(number), _hash32(value, "--expect-head"))
    if Path(text).exists():
        return read_record(text)
    raise LedgerError(
        f"--expect-head takes NUMBER:HASH or an attestation record file, got {text!r}"
    )


def block_hashes(w3: Web3, numbers: Iterable[int]) -> dict[int, bytes | None]:
    """The hash of each canonical block of ``numbers`` (None past the head); batched on a node."""
    wanted = sorted({int(n) for n in numbers if int(n) >= 0})
    head = w3.eth.block_number
    found: dict[int, bytes | None] = {n: None for n in wanted}
    present = [n for n in wanted if n <= head]
    if is_embedded(w3) or not hasattr(w3.provider, "make_batch_request"):
        for n in present:
            found[n] = bytes(w3.eth.get_block(n)["hash"])
        return found
    for lo in range(0, len(present), 500):
        chunk = present[lo : lo + 500]
        answers = w3.provider.make_batch_request(
            [("eth_getBlockByNumber", [hex(n), False]) for n in chunk]
        )
        if isinstance(answers, dict):
            raise LedgerError(f"batched eth_getBlockByNumber failed: {answers.get('error')}")
        for n, answer in zip(chunk, sorted(answers, key=lambda r: int(r["id"])), strict=True):
            result = answer.get("result")
            found[n] = bytes.fromhex(result["hash"][2:]) if result else None
    return found


def _at(hashes: dict[int, bytes | None], anchor: HeadAnchor) -> tuple[bool, str]:
    found = hashes.get(anchor.number)
    if found == anchor.hash:
        return True, f"block {anchor.number} is 0x{anchor.hash.hex()}"
    there = "no such block" if found is None else f"0x{found.hex()}"
    return (
        False,
        f"expected 0x{anchor.hash.hex()} at block {anchor.number}, this chain has {there}: history rewritten",
    )


def check_anchors(
    w3: Web3,
    deployment: Deployment,
    check: Check,
    *,
    expect_genesis: bytes | None = None,
    heads: Iterable[HeadAnchor | AttestationRecord] = (),
) -> None:
    """The genesis (the deployment file's and ``expect_genesis``) and every given head or
    member record, checked against the audited chain."""
    heads = list(heads)
    anchors = [h.seen if isinstance(h, AttestationRecord) else h for h in heads]
    hashes = block_hashes(w3, [0, *(a.number for a in anchors)])
    genesis = hashes[0]
    for claimed, source in (
        (deployment.genesis, "the deployment file's"),
        (expect_genesis, "the expected"),
    ):
        if claimed is None:
            continue
        want = _hash32(claimed, "genesis") if isinstance(claimed, str) else claimed
        check(
            f"the chain's genesis is {source} genesis",
            genesis == want,
            f"expected 0x{want.hex()}, this chain's block 0 is 0x{(genesis or b'').hex()}",
            kind="integrity",
        )
    ledger = deployment.addresses.get("RoundLedger")
    for item in heads:
        if isinstance(item, HeadAnchor):
            ok, detail = _at(hashes, item)
            check(
                f"expected head: block {item.number} is on this chain", ok, detail, kind="integrity"
            )
            continue
        who = f"{item.sender}'s signed attestation of round {item.round}"
        check(
            f"{who} is for this chain and RoundLedger",
            item.chain_id in (None, deployment.chain_id) and item.round_ledger == ledger,
            f"it names chain {item.chain_id}, RoundLedger {item.round_ledger}; "
            f"the deployment says chain {deployment.chain_id}, RoundLedger {ledger}",
            kind="integrity",
        )
        ok, detail = _at(hashes, item.seen)
        check(f"{who}: the head it saw is on this chain", ok, detail, kind="integrity")
        check(
            f"{who} is on this chain",
            _included(w3, item.tx_hash),
            f"tx 0x{item.tx_hash.hex()}",
            kind="integrity",
        )


def _included(w3: Web3, tx_hash: bytes) -> bool:
    try:
        receipt: Any = w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    except Exception:  # web3 raises TransactionNotFound (and eth-tester its own kind)
        return False
    return receipt is not None and int(receipt["status"]) == 1


def check_attested_heads(w3: Web3, rounds: list[dict[str, Any]], check: Check) -> None:
    """Every attestation's head (number, hash) is a block of this chain, per round."""
    wanted = [a["seen_number"] for r in rounds for a in r["attestations"]]
    hashes = block_hashes(w3, wanted)
    for r in rounds:
        bad = [
            a
            for a in r["attestations"]
            if hashes.get(a["seen_number"]) != bytes.fromhex(a["seen_head"][2:])
        ]
        if r["attestations"]:
            check(
                f"round {r['round']}: every attested chain head is a block of this chain",
                not bad,
                f"{bad[0]['account']} saw block {bad[0]['seen_number']} as {bad[0]['seen_head']}"
                if bad
                else "",
                kind="integrity",
            )
