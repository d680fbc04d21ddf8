"""A peer's part in the per-round beacon (:mod:`ledger.beacon`): commit a secret for the next
round, reveal it once the round opens, wait until the beacon's value is final.

The schedule: at the start of round ``r`` a peer reveals its secret for ``r`` and commits a
fresh one for ``r + 1`` (before the first round: :meth:`RoundSecrets.commit_next`). Only a
mode that draws from the beacon (``ProtectionMode.uses_beacon``: ckks) takes part. Secrets live
in memory: a peer that restarts between its commit and its reveal withholds once, which the
chain records (:func:`ledger.beacon.record_withheld`) and which costs it nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio

from ledger.beacon import (
    BeaconInfo,
    beacon_info,
    commit_secret,
    commitment_of,
    new_secret,
    record_withheld,
    reveal_secret,
)
from ledger.chain import event_topic, get_logs
from ledger.errors import LedgerError

if TYPE_CHECKING:
    import logging

    from ledger import LedgerClient

__all__ = ["BeaconFailed", "RoundSecrets"]

#: Seconds past the reveal deadline (by this machine's clock) before the peer gives up waiting
#: for the chain's clock to pass it.
DEADLINE_SLACK_S = 30.0


class BeaconFailed(LedgerError):
    """The round's beacon has no value: too few members revealed their secrets."""


class RoundSecrets:
    """The secrets one peer committed, by round. ``poke()`` tells the peer's waiters that the
    chain moved (a reveal went out); ``chain_changed()`` waits for the next such hint."""

    def __init__(
        self,
        ledger: LedgerClient,
        address: str,
        log: logging.LoggerAdapter,
        *,
        poke: Callable[[], None],
        chain_changed: Callable[[], Awaitable[None]],
    ) -> None:
        self.ledger = ledger
        self.address = address
        self.log = log
        self.poke = poke
        self.chain_changed = chain_changed
        self._secrets: dict[int, bytes] = {}

    def commit_next(self) -> None:
        """Commit a fresh secret for the round after the chain's current one, unless this
        account already did (held here or not: a commitment never changes)."""
        ledger = self.ledger
        round_ = ledger.current_round() + 1
        if round_ in self._secrets or commitment_of(ledger, round_, self.address)[0] is not None:
            return
        secret = new_secret()
        commit_secret(ledger, round_, secret)
        self._secrets[round_] = secret
        self.log.info("committed a beacon secret", round=round_)

    async def start_round(self, round_: int) -> None:
        """Reveal this peer's secret for ``round_`` (if it holds one and has not revealed it),
        then commit one for the next round. Chain errors are logged: the round goes on."""
        ledger = self.ledger
        secret = self._secrets.pop(round_, None)
        for old in [r for r in self._secrets if r < round_]:  # rounds this peer never ran: withheld
            del self._secrets[old]
        try:
            if secret is not None and not commitment_of(ledger, round_, self.address)[1]:
                reveal_secret(ledger, round_, secret)
                self.log.info("revealed its beacon secret", round=round_)
                self.poke()
            self.commit_next()
        except LedgerError as exc:  # e.g. the reveal window closed: recorded as withheld
            self.log.error("beacon: %s", exc, round=round_)

    async def committed(self, round_: int, members: int, *, everyone: float, quorum: float) -> int:
        """Before opening ``round_``: wait until every one of ``members`` committed a secret for
        it (at most ``everyone`` seconds), else until a quorum of them did (at most ``quorum``
        seconds in all). Commitments close when the round opens, so a round opened on fewer
        than the quorum's reveals has a beacon that can only fail (and a ckks round or a
        committee with it); members that start a few seconds apart commit the first round's
        secret a few seconds apart. Returns the commitments counted last."""
        num, den = self.ledger.ledger_config()["quorum"]
        needed = members * num // den + 1  # RoundBeacon's count of reveals for a value
        start = trio.current_time()
        while True:
            commits = beacon_info(self.ledger, round_).commits
            waited = trio.current_time() - start
            if commits >= members or (commits >= needed and waited >= everyone):
                return commits
            if waited >= quorum:
                self.log.warning(
                    "opening with %d of %d beacon secrets committed (%d needed for a value)",
                    commits,
                    members,
                    needed,
                    round=round_,
                )
                return commits
            with trio.move_on_after(1.0):  # a commitment's hint may be lost: re-read each second
                await self.chain_changed()

    async def ready(self, round_: int) -> BeaconInfo:
        """Wait until the beacon of ``round_`` is final; return it if ready, raise
        :class:`BeaconFailed` if too few revealed. Records the withholders once it is final by
        its deadline (not by every committer's reveal)."""
        ledger = self.ledger
        while True:
            info = beacon_info(ledger, round_)
            if info.status in ("ready", "failed"):
                break
            if info.status == "committing":
                raise BeaconFailed(
                    f"round {round_} has not opened: its beacon takes no reveals yet"
                )
            if time.time() > info.reveal_deadline:
                ledger.sync_clock()  # the embedded chain's clock moves with blocks only
                self._record_withholders(
                    round_
                )  # transactions past the deadline also move a chain's clock
                if time.time() > info.reveal_deadline + DEADLINE_SLACK_S:
                    raise BeaconFailed(
                        f"round {round_}: the chain's clock did not pass the reveal deadline"
                    )
            with trio.move_on_after(
                1.0
            ):  # a reveal's hint may be lost: the chain is re-read each second
                await self.chain_changed()
        if info.reveals < info.commits:
            self._record_withholders(round_)
        if info.status == "failed":
            raise BeaconFailed(
                f"round {round_}: {info.reveals} of {info.commits} beacon secrets revealed, "
                f"{info.needed} needed; no draw is made from this round's beacon"
            )
        return info

    def _record_withholders(self, round_: int) -> None:
        """Put on the record each committer of ``round_`` that has not revealed (the contract
        refuses it until the reveal deadline has passed, and twice)."""
        ledger = self.ledger
        topics: list[bytes | None] = [
            event_topic(ledger.beacon, "SecretCommitted"),
            int(round_).to_bytes(32, "big"),
        ]
        for log in get_logs(
            ledger.w3, [ledger.beacon.address], ledger.deployment.start_block, topics
        ):
            account = "0x" + bytes(log["topics"][2])[-20:].hex()
            if commitment_of(ledger, round_, account)[1]:
                continue
            try:
                record_withheld(ledger, round_, account)
                self.log.warning(
                    "recorded that %s withheld its beacon secret", account, round=round_
                )
            except LedgerError as exc:  # another peer recorded it first
                self.log.debug("record_withheld: %s", exc, round=round_)
