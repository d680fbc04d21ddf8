"""``medmesh node run``: one hospital peer as a long-lived OS process.

The process holds one :class:`~gossip.PeerHost` with the persisted identity, one
:class:`~node.peer.pipeline.HospitalPeer` for the round pipeline, and these tasks:

- **schedule** (:meth:`NodeRunner._round_loop`): the chain says which round is current. A
  closed (or stale) round is followed by opening the next one, in turns
  (:mod:`node.service.schedule`); an open round this node can still join is run; otherwise it waits.
- **authorization**: ``authorize(peer_id)`` is "registered and active on chain", from a cache
  re-read before every round and while idle, never inside a round (so every peer judges a
  round's updates against one membership), so a revocation cuts a peer off from the next round.
- **liveness** (:mod:`node.service.liveness`): dial configured peers with backoff, report departures.
- **catch-up** (:mod:`node.service.modelsync`): a node behind the chain's last finalized aggregate
  fetches it from a peer and checks it against the chain.
- **persistence** (:mod:`node.service.state`): after each round the parameters and the completed
  round are written atomically; the privacy ledger is written by the peer before any update
  leaves. A restart resumes with both, at the chain's current round.

Every stage's wall time is measured and logged with each round (``round_done``).
"""

from __future__ import annotations

import logging
import math
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import trio
from web3 import Web3

from gossip import GossipError, PeerHost, sole_exception
from ledger import ContractRevert, Deployment, LedgerClient, LedgerError, connect
from ledger.anchors import write_record
from ledger.committee import committee_info
from node.consensus import protocol
from node.consensus.update import parameters_hash
from node.data.samples import ImageData
from node.errors import BlobRefused, MedmeshError, NotAuthorized, NotHeld
from node.learning.models import load_flat_parameters
from node.learning.privacy import BudgetExhausted, DPConfig, PrivacyLedger
from node.monitoring.stagetimes import STAGES, StageTotals
from node.peer.identity import NodeIdentity
from node.peer.pipeline import HospitalPeer, PeerSettings
from node.service import modelsync, setupsync
from node.service.config import NodeConfig
from node.service.events import EventLog
from node.service.liveness import PeerKeeper
from node.service.privacyfloor import (
    PrivacyFloorError,
    check_floor,
    committed_spend,
    restore_from_chain,
)
from node.service.schedule import opener_rank
from node.service.sources import load_training_data
from node.service.state import NodeState, StateError
from node.service.statuspage import start_monitoring

__all__ = ["NodeRunner", "NodeStopped", "RunnerError"]

SYNC_TIMEOUT_S = 10.0
CHAIN_RETRY_MAX_S = 30.0  # the longest wait between retries while the chain's RPC does not answer
CHAIN_CHECK_S = 5.0  # how often the genesis block and the contracts are checked (chain reset)


def chain_unreachable(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is a failed connection to the RPC."""
    import requests

    seen = 0
    while exc is not None and seen < 8:
        if isinstance(
            exc,
            (
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
                ConnectionError,
                TimeoutError,
            ),
        ):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


class RunnerError(MedmeshError, RuntimeError):
    """The node cannot start or go on; one line saying why."""


class NodeStopped(MedmeshError):
    """The node stops on purpose (revoked, exited the consortium); ``code`` is the exit status."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class NodeRunner:
    def __init__(
        self, cfg: NodeConfig, events_json: bool = False, *, restore_privacy: bool = False
    ) -> None:
        self.cfg = cfg
        self.restore_privacy = restore_privacy
        self.identity = NodeIdentity.load(cfg.node.identity)
        self.events = EventLog(self.identity.institution, json_lines=events_json)
        self._peer: HospitalPeer | None = None  # built by build()
        self.params_round = 0
        self._stage_times = StageTotals(names=STAGES)  # inclusive stage times of the current round
        self.timings: dict[str, float] = self._stage_times.seconds
        self._responded: dict[str, float] = {}
        self._synced = trio.Event()
        self._sync_error: LedgerError | None = (
            None  # the chain was unreachable while checking an offer
        )
        self._std_offers: dict[str, bytes] = {}
        self._std_changed = trio.Event()
        self._std_responded: dict[str, float] = {}
        self._waiting_logged = 0  # the last round whose "waiting_for_members" was logged
        self._standby_logged = False
        self._budget_checked: tuple | None = None  # the ledger history last found to fund a round
        # rounds this process joined with an update: never joined twice, even when the first try
        # ended in an exception (a chain outage mid-round) before completed_round moved on: it
        # trained, so it spent privacy budget on that round already
        self._joined: set[int] = set()
        self._nursery: trio.Nursery | None = None

    @property
    def peer(self) -> HospitalPeer:
        """The round pipeline (:meth:`build` makes it)."""
        if self._peer is None:
            raise RunnerError("the node is not built yet: NodeRunner.build() makes its peer")
        return self._peer

    def _spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn(*args)`` in the node's nursery (open while the node runs)."""
        if self._nursery is None:
            raise RunnerError("the node is not running")
        self._nursery.start_soon(fn, *args)

    # -- set-up ------------------------------------------------------------------------
    def _authorize(self, peer_id: str) -> bool:
        return self._peer is not None and self._peer.authorize(peer_id)

    def build(self) -> None:
        cfg, ident = self.cfg, self.identity
        _check_port_free(cfg)
        import torch

        torch.set_num_threads(cfg.training.threads)
        w3 = connect(cfg.chain.rpc)
        self.client = LedgerClient(w3, Deployment.load(cfg.chain.deployment), ident.account)
        ip, port = cfg.listen_ip_port
        self.host = PeerHost(
            ident.libp2p_seed,
            listen_port=port,
            listen_ip=ip,
            authorize=self._authorize,
            max_blob_bytes=cfg.gossip.max_blob_bytes,
            max_control_bytes=cfg.gossip.max_control_bytes,
            send_attempts=cfg.gossip.send_attempts,
            retry_initial_s=cfg.gossip.reconnect_initial,
            parallel_sends=cfg.gossip.parallel_sends,
            max_conns_per_ip=cfg.gossip.max_connections_per_ip,
            members=sum(i.status == "active" for i in self.client.identities()),
        )
        on_chain = self.client.identity(ident.address)
        if on_chain is None:
            raise RunnerError(
                f"{ident.institution} ({ident.address}) is not registered on chain; run "
                f"`medmesh node register --config {cfg.path}` first"
            )
        if on_chain.peer_id != self.host.peer_id:
            raise RunnerError(
                f"the chain binds {ident.address} to peer {on_chain.peer_id}, but the key file "
                f"gives {self.host.peer_id}"
            )
        if on_chain.status != "active":
            raise RunnerError(
                f"{ident.institution} is {on_chain.status} on chain, not active; it cannot take part"
            )
        privacy = PrivacyLedger(
            DPConfig.from_section(cfg.privacy), cfg.node.state_dir / "privacy.json"
        )
        self._privacy_floor(privacy)
        self._peer = HospitalPeer(
            ident,
            load_training_data(cfg.data),
            self.client,
            self.host,
            privacy,
            PeerSettings.from_config(cfg),
        )
        self.peer.refresh_directory()
        self._quorum = self.client.ledger_config()["quorum"]
        self._genesis = w3.eth.get_block(0)["hash"].hex()
        self._chain_checked = time.monotonic()
        self.host.on_blob(self._on_blob)
        self._instrument(self.peer)
        self._restore()

    def _privacy_floor(self, privacy: PrivacyLedger) -> None:
        """Refuse to run with a ledger below this node's highest ε on chain (issue 17.2)."""
        spend = committed_spend(self.client, self.identity.address)
        if self.restore_privacy:
            if privacy.spent() + 1e-6 < spend.epsilon or not privacy.history:
                try:
                    rebuilt = restore_from_chain(privacy, spend)
                except PrivacyFloorError as exc:
                    raise RunnerError(str(exc)) from None
                self.events.emit(
                    "privacy_restored",
                    epsilon=rebuilt,
                    chain_epsilon=spend.epsilon,
                    commits=spend.commits,
                    delta=privacy.config.delta,
                )
        try:
            check_floor(privacy, spend)
        except PrivacyFloorError as exc:
            raise RunnerError(str(exc)) from None

    def _instrument(self, peer: HospitalPeer) -> None:
        """Add the wall time of each of the peer's pipeline stages to ``timings``."""
        peer.clock.subscribe(self._stage_times)

    def _restore(self) -> None:
        try:
            state = NodeState.load(self.cfg.node.state_dir, self.host.peer_id)
        except StateError as exc:
            raise RunnerError(f"[node].state_dir: {exc}") from None
        peer = self.peer
        if state is None:
            self.events.emit(
                "started",
                peer_id=self.host.peer_id,
                address=self.identity.address,
                resumed=False,
                epsilon=peer.privacy.spent(),
            )
            return
        if state.params is not None and state.params.size != peer.global_params.size:
            raise RunnerError(
                f"state dir {self.cfg.node.state_dir} holds {state.params.size} parameters, "
                f"model {self.cfg.training.model} has {peer.global_params.size}"
            )
        if state.params is None:  # torn or edited: the chain's model is fetched by hash (catch-up)
            self.events.emit(
                "state_recovered", reason=state.recovered, completed_round=state.completed_round
            )
        else:
            self._adopt(state.params, state.params_round)
        peer.completed_round = state.completed_round
        if state.standardizer is not None:
            peer.standardizer = state.standardizer
            peer.data = state.standardizer.apply(peer.raw_data)
        self.events.emit(
            "started",
            peer_id=self.host.peer_id,
            address=self.identity.address,
            resumed=True,
            completed_round=state.completed_round,
            params_round=state.params_round,
            params_hash=None if state.params is None else parameters_hash(state.params).hex(),
            epsilon=peer.privacy.spent(),
        )

    def _adopt(self, params: np.ndarray, round_: int) -> None:
        self.peer.global_params = params.astype(np.float32)
        load_flat_parameters(self.peer.model, self.peer.global_params)
        self.params_round = round_

    def _save(self) -> None:
        peer = self.peer
        try:
            NodeState(
                self.host.peer_id,
                peer.completed_round,
                self.params_round,
                peer.global_params,
                peer.standardizer,
            ).save(self.cfg.node.state_dir)
        except OSError as exc:
            raise RunnerError(
                f"[node].state_dir {self.cfg.node.state_dir}: cannot write the state "
                f"({exc.strerror or exc})"
            ) from None

    # -- the process -------------------------------------------------------------------
    async def run(self) -> int:
        """Run until stopped (SIGINT/SIGTERM), revoked, or ``stop_after_round``; the exit status."""
        self.build()
        monitoring = start_monitoring(self)
        code = 0
        async with self.host.running():
            if not self.host.listen_addrs:
                raise RunnerError(
                    f"[node].listen {self.cfg.node.listen}: no listener could be opened"
                )
            self.events.emit("listening", addrs=self.host.listen_addrs)
            try:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    nursery.start_soon(self._on_signals, nursery.cancel_scope)
                    await nursery.start(self.peer.serve)
                    keeper = PeerKeeper(
                        self.host,
                        self.cfg.node.bootstrap,
                        self.events,
                        allowed=self._authorize,
                        initial=self.cfg.gossip.reconnect_initial,
                        maximum=self.cfg.gossip.reconnect_max,
                        dial_timeout=self.cfg.gossip.dial_timeout,
                    )
                    nursery.start_soon(keeper.run)
                    await self._setup()
                    stopped: NodeStopped | None = None
                    try:
                        await self._round_loop()
                    except NodeStopped as exc:
                        stopped = exc
                    # stopping on purpose: in-flight update transfers finish first, and a
                    # committee member serves the last round's followers
                    with trio.move_on_after(self.peer.waits.deadline()):
                        await self.peer.drain_sends()
                        await self.peer.committee.drain_followers()
                    if stopped is not None:
                        raise stopped
                    nursery.cancel_scope.cancel()
            except BaseExceptionGroup as group:  # trio wraps what the loop raised
                leaf = sole_exception(group)
                if not isinstance(leaf, NodeStopped):
                    raise (leaf or group) from None
                self.events.emit("stopped", reason=str(leaf))
                code = leaf.code
            except NodeStopped as exc:
                self.events.emit("stopped", reason=str(exc))
                code = exc.code
        self.events.emit("exited", code=code, epsilon=self.peer.privacy.spent())
        if monitoring is not None:
            monitoring.close()
        return code

    async def _on_signals(self, scope: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                self.events.emit("signal", signal=signal.Signals(signum).name)
                scope.cancel()
                return

    async def _setup(self) -> None:
        """First start: agree on the standardizer with every member (restarts restore it).

        Once the consortium has run a round, the agreement is over: a node without state (a late
        member, or a lost state directory) fetches the agreed standardizer from the members."""
        if self.peer.data is not None:
            return
        settings = self.peer.settings
        shares = not isinstance(self.peer.raw_data, ImageData) and (
            settings.feature_bounds is None or settings.scaling == "secure"
        )
        if not shares:  # images, or public bounds: nothing to exchange
            await self.peer.agree_standardizer()
            self._save()
            self.events.emit(
                "setup_done",
                members=len(self.peer.active_members()),
                scaling="none" if self.peer.standardizer is None else "bounds",
            )
            return
        if self.client.current_round() > 0:
            await self._fetch_standardizer()
            return
        others = {i.peer_id for i in self.peer.others()}
        with trio.move_on_after(self.cfg.rounds.setup_timeout):
            while not others <= set(self.host.connected_peers()):
                await trio.sleep(self.cfg.rounds.poll_interval)  # the keeper is dialing them
        absent = len(others - set(self.host.connected_peers()))
        if absent and settings.feature_bounds is None:
            raise RunnerError(
                f"{absent} member(s) not connected within rounds.setup_timeout; start all members "
                "for the first run (or give public feature bounds: docs/standardizer.md)"
            )
        # with bounds, an absent member's masked sum is missing: everyone falls back to the bounds
        try:
            await self.peer.agree_standardizer(timeout=self.cfg.rounds.setup_timeout)
        except trio.TooSlowError:
            raise RunnerError(
                "not every member shared its feature sums within rounds.setup_timeout; "
                "start all members for the first run"
            ) from None
        self._save()
        self.events.emit("setup_done", members=len(self.peer.active_members()))

    async def _fetch_standardizer(self) -> None:
        others = self.peer.others()
        need = setupsync.majority(len(others))
        asked: set[str] = set()
        self.events.emit("fetching_standardizer", need=need, members=len(others))
        try:
            with trio.fail_after(self.cfg.rounds.setup_timeout):
                while (std := setupsync.agreed(self._std_offers, need)) is None:
                    connected = set(self.host.connected_peers())
                    for ident in others:
                        if ident.peer_id in connected and ident.address not in asked:
                            asked.add(ident.address)
                            self._spawn(self._request_standardizer, ident)
                    with trio.move_on_after(self.cfg.rounds.poll_interval):
                        await self._std_changed.wait()
        except trio.TooSlowError:
            raise RunnerError(
                f"fewer than {need} members sent one identical standardizer within "
                f"rounds.setup_timeout ({len(self._std_offers)} answered)"
            ) from None
        peer = self.peer
        peer.standardizer = std
        peer.data = std.apply(peer.raw_data)
        self._save()
        self.events.emit("standardizer_fetched", sources=len(self._std_offers), need=need)

    async def _request_standardizer(self, ident) -> None:
        try:
            await self.host.send_blob(ident.peer_id, b"{}", kind=setupsync.REQUEST_KIND)
        except GossipError as exc:
            self.events.emit(
                "standardizer_request_failed", peer=ident.address, error=str(exc)[:160]
            )

    # -- schedule ----------------------------------------------------------------------
    async def _round_loop(self) -> None:
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
                        self._check_chain(
                            force=True
                        )  # contracts gone under us: say so, not the call
                    raise
                failures += 1
                delay = min(
                    self.cfg.gossip.reconnect_initial * 2 ** (failures - 1), CHAIN_RETRY_MAX_S
                )
                self.events.emit(
                    "chain_unreachable",
                    attempt=failures,
                    retry_in=round(delay, 3),
                    rpc=self.cfg.chain.rpc,
                    error=str(leaf)[:160],
                )
                await trio.sleep(delay)

    def _check_chain(self, force: bool = False) -> None:
        """The chain is the one this node joined: same genesis block, the contracts still there."""
        now = time.monotonic()
        if not force and now - self._chain_checked < CHAIN_CHECK_S:
            return
        genesis = self.client.w3.eth.get_block(0)["hash"].hex()
        ledger = Web3.to_checksum_address(self.client.deployment.addresses["RoundLedger"])
        code = self.client.w3.eth.get_code(ledger)
        if genesis != self._genesis or not code:
            self.events.emit(
                "chain_reset", genesis=genesis, expected=self._genesis, contracts=bool(code)
            )
            raise NodeStopped(
                f"the chain at {self.cfg.chain.rpc} was reset (genesis {genesis[:18]}..., this node "
                f"joined {self._genesis[:18]}...; RoundLedger code {'present' if code else 'gone'}): "
                f"redeploy and re-register, or point [chain].rpc at the consortium's chain",
                4,
            )
        self._chain_checked = now

    async def _round_step(self) -> bool:
        """One pass of the schedule; True once the node should stop."""
        poll = self.cfg.rounds.poll_interval
        hint = self.peer.chain_hint()  # before the chain is read: a hint from here on ends the wait
        self._check_chain()
        self.peer.refresh_directory()
        self._check_membership()
        current = self.client.current_round()
        self.peer.at_chain_round(current)
        info = self.client.round_info(current) if current else None
        if self._stop_reached(current, info):
            return True
        if self._campaign_done():
            await trio.sleep(
                poll
            )  # standing by: serves models and relays, trains and opens nothing
        elif info is None or info.status != "open":
            await self._catch_up()
            self.peer.join_beacon()  # before the next round opens, or its beacon has no secret of ours
            await self._open(current + 1)
        elif self._joinable(current, info):
            if not self._enough_members(current):
                await trio.sleep(poll)  # never train (spend epsilon) on an update that cannot leave
            elif await self._catch_up() and self._joinable(
                current, self.client.round_info(current)
            ):
                await self._run_round(current)
            else:
                await trio.sleep(poll)  # no peer to catch up from yet; the keeper is dialing
        elif self._votable(current, info):  # back after the commit window: vote, train next round
            if await self._catch_up():
                await self._run_round(current, vote_only=True)
            else:
                await trio.sleep(poll)
        elif self._chain_time() > info.attest_deadline:
            await self._open(current + 1)  # fails the stale round first
        else:
            await self._next_hint(
                hint
            )  # a round in progress without us: its end's hint, or the next poll
        return False

    async def _next_hint(self, hint: trio.Event, limit: float | None = None) -> None:
        """Wait for ``hint`` (taken from :meth:`HospitalPeer.chain_hint` before the chain was
        read), at most one poll interval (or ``limit``): hints are best effort, the chain is polled."""
        # limit: time left to a deadline read before a chain call, so it may have passed by now
        with trio.move_on_after(
            max(0.0, min(self.cfg.rounds.poll_interval, limit if limit is not None else math.inf))
        ):
            await hint.wait()

    def _enough_members(self, round_: int) -> bool:
        """Enough connected members for this round to finalize (issue 17.8): the chain's quorum
        of the active members (and the rule's minimum) counting this node, and at least one of
        the peers its update goes to. Otherwise nothing is trained and no ε is spent; logged once
        per round."""
        from node.consensus.rules import rule_class

        connected = set(self.host.connected_peers())
        others = [i for i in self.peer.others() if i.peer_id in connected]
        try:
            recipients = self.peer.protection.update_recipients(round_)
        except (
            MedmeshError
        ):  # not drawn yet (ckks: roles come from the beacon, revealed in the round)
            recipients = []
        num, den = self._quorum
        active = len(self.peer.others()) + 1
        need = max(
            rule_class(self.cfg.aggregation.rule).min_updates(self.cfg.aggregation.f),
            -(-active * num // den),
        )
        if len(others) + 1 >= need and (
            not recipients or any(i.peer_id in connected for i in recipients)
        ):
            return True
        if self._waiting_logged != round_:
            self._waiting_logged = round_
            self.events.emit(
                "waiting_for_members",
                round_,
                reachable=len(others) + 1,
                need=need,
                epsilon=self.peer.privacy.spent(),
            )
        return False

    def _campaign_done(self) -> bool:
        """After the budget's planned rounds: stop, or stand by, as ``[rounds].when_done`` says."""
        p = self.peer.privacy
        if self._budget_checked == tuple(p.history):
            return False
        try:
            p.check_round()
            self._budget_checked = tuple(p.history)
            return False
        except BudgetExhausted as exc:
            reason = str(exc)
        if self.cfg.rounds.when_done == "stop":
            self.events.emit(
                "campaign_done",
                action="stop",
                epsilon=p.spent(),
                target=p.config.target_epsilon,
                completed_round=self.peer.completed_round,
            )
            raise NodeStopped(f"campaign done, stopping: {reason}", 0)
        if not self._standby_logged:
            self._standby_logged = True
            self.events.emit(
                "campaign_done",
                action="standby",
                epsilon=p.spent(),
                target=p.config.target_epsilon,
                completed_round=self.peer.completed_round,
            )
        return True

    def _check_membership(self) -> None:
        me = self.client.identity(self.identity.address)
        status = me.status if me is not None else "unregistered"
        if status == "active":
            return
        self.events.emit("not_active", status=status)
        raise NodeStopped(f"{self.identity.institution} is {status} on chain", 3)

    def _chain_time(self) -> int:
        """The latest block's timestamp: deadlines are judged by the chain's clock, not ours."""
        return int(self.client.w3.eth.get_block("latest")["timestamp"])

    def _stop_reached(self, current: int, info) -> bool:
        stop = self.cfg.rounds.stop_after_round
        return bool(stop) and (
            current > stop or (current == stop and info is not None and info.status != "open")
        )

    def _joinable(self, round_: int, info) -> bool:
        if info.status != "open" or round_ <= self.peer.completed_round or round_ in self._joined:
            return False
        if self._chain_time() > info.commit_deadline - self.cfg.rounds.join_margin:
            return False
        return self.client.commitment(round_, self.identity.address) is None  # none before a crash

    def _votable(self, round_: int, info) -> bool:
        """Too late to commit to the open ``round_`` (:meth:`_joinable` said no), but not to vote:
        this node neither committed nor attested, the attestation window is open, and more than
        ``f`` others attested one pair (:meth:`HospitalPeer.vote_attested` checks it) in a mode
        that reveals the updates (a masked or encrypted sum cannot be re-aggregated)."""
        if self.peer.protection.sum_only or (
            info.status != "open"
            or round_ <= self.peer.completed_round
            or info.attest_count <= self.cfg.aggregation.f
        ):
            return False
        if self._chain_time() > info.attest_deadline:
            return False
        me = self.identity.address
        if (
            self.client.commitment(round_, me) is not None
            or self.client.attestation(round_, me) is not None
        ):
            return False
        return self.peer.attested_lead(round_) is not None

    async def _open(self, round_: int) -> None:
        """Open ``round_`` in turn: wait ``rank * open_fallback`` unless someone else opens it."""
        members = [m.address for m in self.peer.active_members()]
        rank = opener_rank(round_, members, self.identity.address)
        previous = round_ - 1
        if previous:  # late attestations count only until the next round opens: give them a moment
            grace = trio.current_time() + self.cfg.rounds.attest_grace
            voters = committee_info(self.client, previous).size or len(members)  # a committee's k
            while trio.current_time() < grace:
                hint = self.peer.chain_hint()
                if self.client.current_round() >= round_:
                    break
                info = self.client.round_info(previous)
                if info.status != "finalized" or info.attest_count >= min(voters, len(members)):
                    break
                await self._next_hint(hint)  # an attestation's hint, or the next poll
        deadline = trio.current_time() + rank * self.cfg.rounds.open_fallback
        while trio.current_time() < deadline:
            hint = self.peer.chain_hint()
            if self.client.current_round() >= round_:
                return
            await self._next_hint(
                hint, deadline - trio.current_time()
            )  # the opener's RoundOpened hint
        if self.peer.draws_beacon:  # the round's draw needs the members' beacon commitments
            rounds = self.cfg.rounds
            await self.peer.beacon.committed(
                round_, len(members), everyone=rounds.open_fallback, quorum=rounds.round_timeout
            )
            if self.client.current_round() >= round_:
                return
        try:
            if previous and self.client.round_info(previous).status == "open":
                self.client.fail_round(previous)
                self.events.emit("failed_stale_round", previous)
            opened = self.client.open_round()
        except ContractRevert as exc:  # another member opened (or failed) it first: fine
            self.events.emit("open_skipped", round_, reason=str(exc)[:160])
            return
        self.events.emit("opened", opened, rank=rank)
        try:
            await self.host.publish(
                protocol.ROUND_TOPIC,
                protocol.encode(protocol.RoundOpened(opened, self.identity.address)),
            )
        except GossipError as exc:  # a hint; the others poll the chain anyway
            self.events.emit("publish_failed", opened, error=str(exc)[:160])

    async def _run_round(self, round_: int, vote_only: bool = False) -> None:
        """Run ``round_`` (or, ``vote_only``, vote for its attested pair without an update)."""
        self.timings.clear()
        before = self.host.stats
        started = time.perf_counter()
        self.events.emit("round_joined", round_, vote_only=vote_only)
        if not vote_only:
            self._joined.add(round_)
        out = await (self.peer.vote_attested(round_) if vote_only else self.peer.run_round(round_))
        self.peer.completed_round = max(
            self.peer.completed_round, round_
        )  # never rejoin (re-train) it
        seconds = time.perf_counter() - started
        after = self.host.stats
        info = self.client.round_info(round_)
        if info.status == "finalized" and info.aggregate_hash == parameters_hash(
            self.peer.global_params
        ):
            self.params_round = round_
        if not out.finalized and out.error is None:  # a round that did not finalize always says why
            out.error = (
                "the round failed on chain"
                if info.status == "failed"
                else f"no quorum within rounds.round_timeout (chain status {info.status})"
            )
        self._save()
        self._keep_attestation(round_)
        stages = {k: round(v, 4) for k, v in self.timings.items()}
        self.events.emit(
            "round_done",
            round_,
            finalized=out.finalized,
            aggregate_hash=out.aggregate_hash,
            params_round=self.params_round,
            accepted=out.accepted,
            rejected=out.rejected,
            error=out.error,
            epsilon=round(self.peer.privacy.spent(), 6),
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
        raw = self.client.attestation_records.get(round_)
        if raw is None:
            return
        try:
            write_record(self.cfg.node.state_dir / "attestations" / f"round-{round_}.json", raw)
        except (OSError, LedgerError) as exc:  # the round stands; only the evidence is missing
            self.events.emit("record_failed", round_, error=str(exc)[:160])

    # -- catch-up ----------------------------------------------------------------------
    def _latest_finalized(self) -> int:
        for round_ in range(self.client.current_round(), self.params_round, -1):
            if self.client.round_info(round_).status == "finalized":
                return round_
        return self.params_round

    async def _catch_up(self) -> bool:
        """Fetch the latest finalized aggregate from peers if ours is older (checked on chain);
        True once this node holds it."""
        target = self._latest_finalized()
        if target <= self.params_round:
            return True
        connected = set(self.host.connected_peers())
        others = [i for i in self.peer.others() if i.peer_id in connected]
        if not others:
            return False
        self.events.emit("catching_up", target, have=self.params_round)
        for ident in others:
            self._synced = trio.Event()
            try:
                await self.host.send_blob(
                    ident.peer_id, modelsync.encode_request(target), kind=modelsync.REQUEST_KIND
                )
            except GossipError as exc:
                self.events.emit(
                    "sync_request_failed", target, peer=ident.address, error=str(exc)[:160]
                )
                continue
            with trio.move_on_after(SYNC_TIMEOUT_S):
                await self._synced.wait()
            if self._sync_error is not None:  # an offer came, but the chain cannot check it now
                error, self._sync_error = self._sync_error, None
                raise error
            if self.params_round >= target:
                self.peer.completed_round = max(self.peer.completed_round, self.params_round)
                self._save()
                self.events.emit(
                    "caught_up",
                    self.params_round,
                    source=ident.address,
                    params_hash=parameters_hash(self.peer.global_params).hex(),
                )
                return True
        self.events.emit("catch_up_failed", target, asked=len(others))
        return False

    async def _on_blob(self, from_peer: str, kind: str, data: bytes) -> None:
        if kind == setupsync.REQUEST_KIND:
            self._answer_standardizer(from_peer)
        elif kind == setupsync.OFFER_KIND:
            ident = self.peer.identity_of(from_peer)
            if ident is None:
                raise NotAuthorized("standardizer from an unknown peer")
            self._std_offers[ident.address] = setupsync.decode_offer(
                data, self.peer.raw_data.x[0].size
            )
            self._std_changed.set()
            self._std_changed = trio.Event()
        elif kind == modelsync.REQUEST_KIND:
            modelsync.decode_request(data)
            now = time.monotonic()
            if now - self._responded.get(from_peer, -1e9) < modelsync.RESPONSE_INTERVAL_S:
                raise NotAuthorized(
                    f"model requests are limited to one per {modelsync.RESPONSE_INTERVAL_S:g} s"
                )
            self._responded[from_peer] = now
            offer = modelsync.ModelOffer(self.params_round, self.peer.global_params.copy())
            self._spawn(self._send_offer, from_peer, offer)
        elif kind == modelsync.MODEL_KIND:
            offer = modelsync.decode_offer(data, self.peer.global_params.size)
            if offer.round <= self.params_round:
                return
            try:
                info = self.client.round_info(offer.round)
            except LedgerError as exc:  # the chain is down: the catch-up gives way to the retries
                if chain_unreachable(exc):
                    self._sync_error = exc
                    self._synced.set()
                raise
            if info.status != "finalized" or info.aggregate_hash != parameters_hash(offer.params):
                raise BlobRefused(
                    f"offered parameters are not round {offer.round}'s finalized aggregate"
                )
            self._adopt(offer.params, offer.round)
            self._synced.set()
        else:
            await self.peer.handle_blob(from_peer, kind, data)

    def _answer_standardizer(self, from_peer: str) -> None:
        std = self.peer.standardizer
        if std is None:
            raise NotHeld("this node holds no standardizer")
        now = time.monotonic()
        if now - self._std_responded.get(from_peer, -1e9) < setupsync.RESPONSE_INTERVAL_S:
            raise NotAuthorized(
                f"standardizer requests are limited to one per {setupsync.RESPONSE_INTERVAL_S:g} s"
            )
        self._std_responded[from_peer] = now
        self._spawn(self._send_standardizer, from_peer, setupsync.encode_offer(std))

    async def _send_standardizer(self, peer_id: str, payload: bytes) -> None:
        try:
            await self.host.send_blob(peer_id, payload, kind=setupsync.OFFER_KIND)
        except GossipError as exc:
            self.events.emit("standardizer_offer_failed", peer_id=peer_id, error=str(exc)[:160])

    async def _send_offer(self, peer_id: str, offer: modelsync.ModelOffer) -> None:
        try:
            await self.host.send_blob(
                peer_id, modelsync.encode_offer(offer), kind=modelsync.MODEL_KIND
            )
        except GossipError as exc:
            self.events.emit(
                "sync_offer_failed", offer.round, peer_id=peer_id, error=str(exc)[:160]
            )


def _check_port_free(cfg: NodeConfig) -> None:
    """A busy listen port is a one-line error at start (issue 17.12), not a node without listener."""
    ip, port = cfg.listen_ip_port
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the listener itself does
        try:
            sock.bind((ip, port))
        except OSError as exc:
            raise RunnerError(
                f"[node].listen {cfg.node.listen}: cannot listen ({exc.strerror or exc}); "
                f"is another node running on this port?"
            ) from None


def configure_logging(events: EventLog, verbose: bool) -> None:
    """Route the peer's and the gossip layer's records into the event log."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(events.handler())
    logging.captureWarnings(
        True
    )  # library warnings (Opacus, every round) become log events, not stderr
    root.setLevel(logging.WARNING)
    logging.getLogger("medmesh").setLevel(logging.INFO)
    logging.getLogger("medmesh.gossip").setLevel(logging.INFO if verbose else logging.WARNING)
    for noisy in ("libp2p", "multiaddr", "async_service", "web3", "eth", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
