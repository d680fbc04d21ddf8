"""The campaign: the node's round schedule, from the chain, until a stop.

:meth:`Campaign.run` reads the chain's current round and acts on it, round after round:

- a closed (or stale) round is followed by catching up (:class:`~node.service.catchup.CatchUp`)
  and opening the next one in turn (:class:`~node.service.opener.RoundOpener`);
- an open round this node can still join (:meth:`Campaign.joinable`: before the commit deadline
  less ``[rounds].join_margin``, no commitment of its own on chain, and never a round this
  process joined already, even one whose first try ended in an exception, since it trained and
  spent budget then) is run once enough members are connected to finalize it;
- too late to commit but not to vote (:meth:`Campaign.votable`): the node votes for the round's
  attested pair without an update;
- otherwise it waits for the round's end (a hint, or the next poll).

A chain RPC outage is retried with backoff (each retry logged as ``chain_unreachable``); a chain
reset (another genesis block, or the contracts gone) stops the node with one line; so do a
revocation and, with ``[rounds].when_done = "stop"``, the end of the privacy budget. Every
round's stage times and bytes are logged with its ``round_done`` event.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import trio
from web3 import Web3

from gossip import sole_exception
from ledger import LedgerError
from ledger.anchors import write_record
from node.consensus.update import parameters_hash
from node.errors import MedmeshError
from node.learning.privacy import BudgetExhausted
from node.service.failures import NodeStopped, chain_unreachable
from node.service.opener import next_hint

if TYPE_CHECKING:
    from ledger.records import RoundInfo
    from node.monitoring.stagetimes import StageTotals
    from node.service.catchup import CatchUp
    from node.service.nodecore import NodeCore
    from node.service.opener import RoundOpener

__all__ = ["Campaign", "CHAIN_RETRY_MAX_S", "CHAIN_CHECK_S"]

CHAIN_RETRY_MAX_S = 30.0  # the longest wait between retries while the chain's RPC does not answer
CHAIN_CHECK_S = 5.0  # how often the genesis block and the contracts are checked (chain reset)


class Campaign:
    """The node's round schedule; :meth:`bind` reads the chain it joined, :meth:`run` runs it."""

    def __init__(
        self, node: NodeCore, catchup: CatchUp, opener: RoundOpener, stages: StageTotals
    ) -> None:
        self.node, self.catchup, self.opener = node, catchup, opener
        self._stage_seconds = stages.seconds  # inclusive stage times of the current round
        self._waiting_logged = 0  # the last round whose "waiting_for_members" was logged
        self._standby_logged = False
        self._budget_checked: tuple | None = None  # the ledger history last found to fund a round
        # rounds this process joined with an update: never joined twice, even when the first try
        # ended in an exception (a chain outage mid-round) before completed_round moved on: it
        # trained, so it spent privacy budget on that round already
        self._joined: set[int] = set()
        self._quorum: tuple[int, int] = (1, 1)
        self._genesis = ""
        self._chain_checked = 0.0

    def bind(self) -> None:
        """Read the chain this node joins: its quorum and genesis block (a reset is detected)."""
        client = self.node.client
        self._quorum = client.ledger_config()["quorum"]
        self._genesis = client.w3.eth.get_block(0)["hash"].hex()
        self._chain_checked = time.monotonic()

    async def run(self) -> None:
        """Schedule rounds until a stop; a chain RPC outage is retried with backoff (each retry
        logged as ``chain_unreachable``), a chain reset stops the node with one line."""
        failures = 0
        while True:
            try:
                if await self._round_step():
                    return
                failures = 0
            except BaseException as exc:  # noqa: BLE001 - re-raised unless the chain is unreachable
                leaf = sole_exception(exc) if isinstance(exc, BaseExceptionGroup) else exc
                if not chain_unreachable(leaf):
                    if isinstance(leaf, Exception) and not isinstance(leaf, NodeStopped):
                        # contracts gone under us: say so, not the call
                        self._check_chain(force=True)
                    raise
                failures += 1
                delay = min(
                    self.node.cfg.gossip.reconnect_initial * 2 ** (failures - 1), CHAIN_RETRY_MAX_S
                )
                self.node.events.emit(
                    "chain_unreachable",
                    attempt=failures,
                    retry_in=round(delay, 3),
                    rpc=self.node.cfg.chain.rpc,
                    error=str(leaf)[:160],
                )
                await trio.sleep(delay)

    def _check_chain(self, force: bool = False) -> None:
        """The chain is the one this node joined: same genesis block, the contracts still there."""
        now = time.monotonic()
        if not force and now - self._chain_checked < CHAIN_CHECK_S:
            return
        genesis = self.node.client.w3.eth.get_block(0)["hash"].hex()
        ledger = Web3.to_checksum_address(self.node.client.deployment.addresses["RoundLedger"])
        code = self.node.client.w3.eth.get_code(ledger)
        if genesis != self._genesis or not code:
            self.node.events.emit(
                "chain_reset", genesis=genesis, expected=self._genesis, contracts=bool(code)
            )
            raise NodeStopped(
                f"the chain at {self.node.cfg.chain.rpc} was reset (genesis {genesis[:18]}..., "
                f"this node joined {self._genesis[:18]}...; RoundLedger code "
                f"{'present' if code else 'gone'}): "
                f"redeploy and re-register, or point [chain].rpc at the consortium's chain",
                4,
            )
        self._chain_checked = now

    async def _round_step(self) -> bool:
        """One pass of the schedule; True once the node should stop."""
        poll = self.node.cfg.rounds.poll_interval
        # taken before the chain is read: a hint from here on ends the wait
        hint = self.node.peer.chain_hint()
        self._check_chain()
        self.node.peer.refresh_directory()
        self._check_membership()
        current = self.node.client.current_round()
        self.node.peer.at_chain_round(current)
        info = self.node.client.round_info(current) if current else None
        if self._stop_reached(current, info):
            return True
        if self._campaign_done():
            # standing by: serves models and relays, trains and opens nothing
            await trio.sleep(poll)
        elif info is None or info.status != "open":
            await self.catchup.run()
            # before the next round opens, or its beacon has no secret of ours
            self.node.peer.join_beacon()
            await self.opener.open(current + 1)
        elif self.joinable(current, info):
            if not self._enough_members(current):
                await trio.sleep(poll)  # never train (spend epsilon) on an update that cannot leave
            elif await self.catchup.run() and self.joinable(
                current, self.node.client.round_info(current)
            ):
                await self._run_round(current)
            else:
                await trio.sleep(poll)  # no peer to catch up from yet; the keeper is dialing
        elif self.votable(current, info):  # back after the commit window: vote, train next round
            if await self.catchup.run():
                await self._run_round(current, vote_only=True)
            else:
                await trio.sleep(poll)
        elif self._chain_time() > info.attest_deadline:
            await self.opener.open(current + 1)  # fails the stale round first
        else:
            await next_hint(
                hint, poll
            )  # a round in progress without us: its end's hint, or the next poll
        return False

    def _enough_members(self, round_: int) -> bool:
        """Enough connected members for this round to finalize (issue 17.8): the chain's quorum
        of the active members (and the rule's minimum) counting this node, and at least one of
        the peers its update goes to. Otherwise nothing is trained and no ε is spent; logged once
        per round."""
        from node.consensus.rules import rule_class

        connected = set(self.node.host.connected_peers())
        others = [i for i in self.node.peer.others() if i.peer_id in connected]
        try:
            recipients = self.node.peer.protection.update_recipients(round_)
        except (
            MedmeshError
        ):  # not drawn yet (ckks: roles come from the beacon, revealed in the round)
            recipients = []
        num, den = self._quorum
        active = len(self.node.peer.others()) + 1
        need = max(
            rule_class(self.node.cfg.aggregation.rule).min_updates(self.node.cfg.aggregation.f),
            -(-active * num // den),
        )
        if len(others) + 1 >= need and (
            not recipients or any(i.peer_id in connected for i in recipients)
        ):
            return True
        if self._waiting_logged != round_:
            self._waiting_logged = round_
            self.node.events.emit(
                "waiting_for_members",
                round_,
                reachable=len(others) + 1,
                need=need,
                epsilon=self.node.peer.privacy.spent(),
            )
        return False

    def _campaign_done(self) -> bool:
        """After the budget's planned rounds: stop, or stand by, as ``[rounds].when_done`` says."""
        p = self.node.peer.privacy
        if self._budget_checked == tuple(p.history):
            return False
        try:
            p.check_round()
            self._budget_checked = tuple(p.history)
            return False
        except BudgetExhausted as exc:
            reason = str(exc)
        action = self.node.cfg.rounds.when_done  # "stop" or "standby"
        if action == "stop" or not self._standby_logged:
            self._standby_logged = True
            self.node.events.emit(
                "campaign_done",
                action=action,
                epsilon=p.spent(),
                target=p.config.target_epsilon,
                completed_round=self.node.peer.completed_round,
            )
        if action == "stop":
            raise NodeStopped(f"campaign done, stopping: {reason}", 0)
        return True

    def _check_membership(self) -> None:
        me = self.node.client.identity(self.node.identity.address)
        status = me.status if me is not None else "unregistered"
        if status == "active":
            return
        self.node.events.emit("not_active", status=status)
        raise NodeStopped(f"{self.node.identity.institution} is {status} on chain", 3)

    def _chain_time(self) -> int:
        """The latest block's timestamp: deadlines are judged by the chain's clock, not ours."""
        return int(self.node.client.w3.eth.get_block("latest")["timestamp"])

    def _stop_reached(self, current: int, info: RoundInfo | None) -> bool:
        stop = self.node.cfg.rounds.stop_after_round
        return bool(stop) and (
            current > stop or (current == stop and info is not None and info.status != "open")
        )

    def joinable(self, round_: int, info: RoundInfo) -> bool:
        """Whether this node may still join the open ``round_`` with an update."""
        if (
            info.status != "open"
            or round_ <= self.node.peer.completed_round
            or round_ in self._joined
        ):
            return False
        if self._chain_time() > info.commit_deadline - self.node.cfg.rounds.join_margin:
            return False
        return (
            self.node.client.commitment(round_, self.node.identity.address) is None
        )  # none before a crash

    def votable(self, round_: int, info: RoundInfo) -> bool:
        """Too late to commit to the open ``round_`` (:meth:`joinable` said no), but not to vote:
        this node neither committed nor attested, the attestation window is open, and more than
        ``f`` others attested one pair (:meth:`HospitalPeer.vote_attested` checks it) in a mode
        that reveals the updates (a masked or encrypted sum cannot be re-aggregated)."""
        if self.node.peer.protection.sum_only or (
            info.status != "open"
            or round_ <= self.node.peer.completed_round
            or info.attest_count <= self.node.cfg.aggregation.f
        ):
            return False
        if self._chain_time() > info.attest_deadline:
            return False
        me = self.node.identity.address
        if (
            self.node.client.commitment(round_, me) is not None
            or self.node.client.attestation(round_, me) is not None
        ):
            return False
        return self.node.peer.attested_lead(round_) is not None

    async def _run_round(self, round_: int, vote_only: bool = False) -> None:
        """Run ``round_`` (or, ``vote_only``, vote for its attested pair without an update)."""
        self._stage_seconds.clear()
        before = self.node.host.stats
        started = time.perf_counter()
        self.node.events.emit("round_joined", round_, vote_only=vote_only)
        if not vote_only:
            self._joined.add(round_)
        out = await (
            self.node.peer.vote_attested(round_) if vote_only else self.node.peer.run_round(round_)
        )
        # never rejoin (re-train) it
        self.node.peer.completed_round = max(self.node.peer.completed_round, round_)
        seconds = time.perf_counter() - started
        after = self.node.host.stats
        info = self.node.client.round_info(round_)
        if info.status == "finalized" and info.aggregate_hash == parameters_hash(
            self.node.peer.global_params
        ):
            self.node.params_round = round_
        if not out.finalized and out.error is None:  # a round that did not finalize always says why
            out.error = (
                "the round failed on chain"
                if info.status == "failed"
                else f"no quorum within rounds.round_timeout (chain status {info.status})"
            )
        self.node.save()
        self._keep_attestation(round_)
        stages = {k: round(v, 4) for k, v in self._stage_seconds.items()}
        self.node.events.emit(
            "round_done",
            round_,
            finalized=out.finalized,
            aggregate_hash=out.aggregate_hash,
            params_round=self.node.params_round,
            accepted=out.accepted,
            rejected=out.rejected,
            error=out.error,
            epsilon=round(self.node.peer.privacy.spent(), 6),
            samples=out.samples,
            seconds=round(seconds, 4),
            stages=stages,
            bytes_sent=(after.blob_bytes_sent + after.control_bytes_sent)
            - (before.blob_bytes_sent + before.control_bytes_sent),
            bytes_received=(after.blob_bytes_received + after.control_bytes_received)
            - (before.blob_bytes_received + before.control_bytes_received),
            streams_refused=after.streams_refused,
            connections_refused=after.connections_refused,
            control_rejected=after.control_rejected,
        )

    def _keep_attestation(self, round_: int) -> None:
        """Keep this member's signed attestation of ``round_`` (the chain head it saw is in
        it): an auditor given it detects a rewritten history (ledger.anchors)."""
        raw = self.node.client.attestation_records.get(round_)
        if raw is None:
            return
        try:
            write_record(
                self.node.cfg.node.state_dir / "attestations" / f"round-{round_}.json", raw
            )
        except (OSError, LedgerError) as exc:  # the round stands; only the evidence is missing
            self.node.events.emit("record_failed", round_, error=str(exc)[:160])
