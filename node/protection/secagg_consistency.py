"""secagg's consistency check and release guard: Bonawitz et al. 2017, "Practical Secure
Aggregation for Privacy-Preserving Machine Learning" (CCS), section 6 (the active-adversary
protocol, ConsistencyCheck round).

Without a server, each peer plays the server for itself, so two honest peers can hold
different views of the round: a member that deals its Shamir shares to only some peers, or a
masked input that reaches only some, splits the participants (U2) or the survivors (U3). If
one group then reveals a peer's self-mask seed ``b_u`` (it survived, for them) and another its
mask key ``s_u`` (it dropped, for them), whoever receives both unmasks that peer's update.

So before any share leaves, every survivor signs one *statement* (the participants, a hash
of their mask keys, the survivors: the committers on chain) with its registered Ed25519 key,
sends it to every member, and releases shares only for a statement that carries ``t``
valid signatures of distinct survivors, its own included. Two different statements cannot
both reach ``t`` unless some member signed both; with ``t`` = :func:`consistency_threshold`
(more than 2n/3) that takes more than n/3 double-signing members, the bound of section 6.

:class:`ReleaseLog` is the last guard, kept on disk: per round, this peer releases shares for
one statement only, and never a self-mask share and a mask-key share of the same member.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from node.crypto.secagg import shamir
from node.crypto.secagg.masking import SecAggError
from node.service.fsutil import atomic_write_json

__all__ = [
    "MIN_CONTRIBUTORS",
    "consistency_threshold",
    "keys_hash",
    "statement_digest",
    "sign_statement",
    "verify_statement",
    "agreed_statement",
    "agreeing",
    "reconstruct",
    "ReleaseLog",
]

MIN_CONTRIBUTORS = (
    3  # the least a sum may hold: with two, each contributor learns the other's update
)
_KEEP_ROUNDS = 64  # rounds a release log remembers (each round uses fresh secrets)

Statement = tuple[tuple[str, ...], bytes, tuple[str, ...]]  # (participants, keys hash, survivors)


def consistency_threshold(members: int) -> int:
    """Signatures a statement needs: ``floor(2n/3) + 1``. Two statements with ``t`` signatures
    each share ``2t - n > n/3`` signers, so tolerating fewer than n/3 corrupt members no
    honest member signed both (Bonawitz et al. 2017, section 6)."""
    return 2 * members // 3 + 1


def keys_hash(mask_keys: Mapping[str, bytes]) -> bytes:
    """SHA-256 over the participants' public mask keys, in address order (binds U1's keys)."""
    h = hashlib.sha256(b"medmesh/secagg/v1/keys")
    for address in sorted(mask_keys, key=str.lower):
        h.update(address.lower().encode() + b"=" + mask_keys[address] + b";")
    return h.digest()


def statement_digest(context: bytes, round_: int, statement: Statement) -> bytes:
    """What a survivor signs: the deployment context, the round and the statement."""
    participants, khash, survivors = statement
    body = json.dumps(
        {
            "round": round_,
            "participants": [p.lower() for p in participants],
            "keys_hash": khash.hex(),
            "survivors": [s.lower() for s in survivors],
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    return hashlib.sha256(b"medmesh/secagg/v1/consistency|" + context + b"|" + body).digest()


def sign_statement(
    key: Ed25519PrivateKey, context: bytes, round_: int, statement: Statement
) -> bytes:
    return key.sign(statement_digest(context, round_, statement))


def verify_statement(
    public: bytes, signature: bytes, context: bytes, round_: int, statement: Statement
) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(
            signature, statement_digest(context, round_, statement)
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def agreeing(revealed: Mapping[str, Any], agreed: Statement, signers: set[str]) -> dict[str, Any]:
    """The released shares (``secagg-unmask`` messages by sender) that are for the ``agreed``
    statement and come from survivors among the ``signers`` (lower-case: every member, or
    the round's seats, since a follower of a committee holds no shares)."""
    participants, _, survivors = agreed
    return {
        a.lower(): u
        for a, u in revealed.items()
        if u.survivors == survivors
        and u.participants == participants
        and a.lower() in survivors
        and a.lower() in signers
    }


def reconstruct(
    agreeing: Mapping[str, Any], agreed: Statement, threshold: int
) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """The survivors' self-mask seeds and the dropped participants' mask keys, from the
    ``agreeing`` releases (:func:`agreeing`) of ``agreed``; any ``threshold`` shares each."""
    participants, _, survivors = agreed
    dropped = [p for p in participants if p not in survivors]
    try:
        seeds = {
            u: shamir.reconstruct(
                [m.seeds[u] for m in agreeing.values() if u in m.seeds], threshold, 32
            )
            for u in survivors
        }
        keys = {
            d: shamir.reconstruct(
                [m.keys[d] for m in agreeing.values() if d in m.keys], threshold, 32
            )
            for d in dropped
        }
    except shamir.ShamirError as exc:
        raise SecAggError(
            f"cannot unmask the sum ({len(dropped)} of {len(participants)} participants "
            f"dropped, {len(agreeing)} revealed shares): {exc}"
        ) from None
    return seeds, keys


def agreed_statement(
    signed: Iterable[tuple[str, Statement, bytes]],
    sign_keys: Mapping[str, bytes],
    context: bytes,
    round_: int,
    threshold: int,
) -> Statement | None:
    """The statement that at least ``threshold`` distinct survivors signed validly, or None.

    ``signed``: (signer, statement, signature); a signature counts only if it verifies under
    the signer's registered key and the signer is one of the statement's survivors."""
    votes: dict[Statement, set[str]] = defaultdict(set)
    for signer, statement, signature in signed:
        who = signer.lower()
        if who not in statement[2] or who not in sign_keys:
            continue
        if verify_statement(sign_keys[who], signature, context, round_, statement):
            votes[statement].add(who)
    winners = [s for s, v in votes.items() if len(v) >= threshold]
    if len(winners) > 1:  # more than n/3 members signed twice: nothing is safe to release
        raise SecAggError(
            f"{len(winners)} different survivor sets each carry {threshold} signatures; "
            f"releasing no shares"
        )
    return winners[0] if winners else None


class ReleaseLog:
    """What this peer released per round: one statement, and for each member either its
    self-mask share (``b``) or its mask-key share (``s``), never both. Written to ``path``
    (atomically, before the shares leave) so a restart cannot be talked into the other half.

    A round is named by a string that must not repeat across chains (the secagg mode uses the
    round number and its seed on chain: a state directory reused with a fresh devnet, whose
    contracts sit at the same addresses, starts from round 1 again)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._rounds: dict[str, dict] = {}
        if self.path is not None and self.path.exists():
            try:
                raw = json.loads(self.path.read_text())
                self._rounds = {
                    str(v["round"]): {
                        "statement": str(v["statement"]),
                        "b": list(v["b"]),
                        "s": list(v["s"]),
                    }
                    for v in raw["released"]
                }
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise SecAggError(
                    f"secagg release log {self.path} is unreadable ({exc}); refusing to start "
                    f"without knowing which shares were released"
                ) from None

    def released(self, round_: str) -> dict | None:
        return self._rounds.get(round_)

    def record(
        self, round_: str, digest: bytes, seeds_for: Iterable[str], keys_for: Iterable[str]
    ) -> None:
        """Allow releasing self-mask shares of ``seeds_for`` and mask-key shares of ``keys_for``
        under the statement ``digest``; raise :class:`SecAggError` if that would reveal both
        halves of any member, in this call or with what this round already released."""
        b, s = sorted({a.lower() for a in seeds_for}), sorted({a.lower() for a in keys_for})
        both = set(b) & set(s)
        if both:
            raise SecAggError(
                f"refusing to release both the self-mask and the mask-key share of {sorted(both)}"
            )
        entry = {"statement": digest.hex(), "b": b, "s": s}
        before = self._rounds.get(round_)
        if before is not None:
            if before == entry:
                return  # the same release again (e.g. resent): nothing new leaves
            crossed = (set(before["b"]) & set(s)) | (set(before["s"]) & set(b))
            detail = f" (that would reveal both shares of {sorted(crossed)})" if crossed else ""
            raise SecAggError(
                f"round {round_}: shares were already released for another survivor set; "
                f"refusing a second release{detail}"
            )
        self._rounds[round_] = entry
        for old in list(self._rounds)[:-_KEEP_ROUNDS]:  # oldest first: insertion order
            del self._rounds[old]
        if self.path is not None:
            atomic_write_json(
                self.path,
                {"released": [{"round": r} | v for r, v in self._rounds.items()]},
                mode=0o600,
            )
