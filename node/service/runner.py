"""``medmesh node run``: one hospital peer as a long-lived OS process.

The process holds one :class:`~gossip.PeerHost` with the persisted identity, one
:class:`~node.peer.pipeline.HospitalPeer` for the round pipeline, and these rooms, each seeing
the runner only through :class:`~node.service.nodecore.NodeCore`:

- **campaign** (:class:`~node.service.campaign.Campaign`): the chain says which round is current;
  a closed (or stale) round is followed by opening the next one in turns
  (:class:`~node.service.opener.RoundOpener`, :mod:`node.service.schedule`); an open round this
  node can still join is run; otherwise it waits. A chain outage is retried, a reset stops it.
- **authorization**: ``authorize(peer_id)`` is "registered and active on chain", from a cache
  re-read before every round and while idle, never inside a round (so every peer judges a
  round's updates against one membership), so a revocation cuts a peer off from the next round.
- **liveness** (:mod:`node.service.liveness`): dial configured peers with backoff, report departures.
- **catch-up** (:class:`~node.service.catchup.CatchUp`): a node behind the chain's last finalized
  aggregate fetches it from a peer and checks it against the chain.
- **set-up** (:class:`~node.service.standardizersync.StandardizerSync`): the standardizer agreed
  on the first start, or fetched from the members later.
- **persistence** (:mod:`node.service.state`): after each round the parameters and the completed
  round are written atomically; the privacy ledger is written by the peer before any update
  leaves. A restart resumes with both, at the chain's current round.

This module owns the process: building the host and the peer, restoring and saving the state,
the nursery and the signals, and routing the blobs the host receives to the room they are for.
Every stage's wall time is measured and logged with each round (``round_done``).
"""

from __future__ import annotations

import logging
import signal
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import trio

from gossip import PeerHost, sole_exception
from ledger import Deployment, LedgerClient, connect
from node.consensus.update import parameters_hash
from node.learning.models import load_flat_parameters
from node.learning.privacy import DPConfig, PrivacyLedger
from node.monitoring.stagetimes import STAGES, StageTotals
from node.peer.identity import NodeIdentity
from node.peer.pipeline import HospitalPeer, PeerSettings
from node.service import modelsync, setupsync
from node.service.campaign import Campaign
from node.service.catchup import CatchUp
from node.service.config import NodeConfig
from node.service.events import EventLog
from node.service.failures import NodeStopped, RunnerError, chain_unreachable
from node.service.liveness import PeerKeeper
from node.service.opener import RoundOpener
from node.service.privacyfloor import (
    PrivacyFloorError,
    check_floor,
    committed_spend,
    restore_from_chain,
)
from node.service.sources import load_training_data
from node.service.standardizersync import StandardizerSync
from node.service.state import NodeState, StateError
from node.service.statuspage import start_monitoring

__all__ = ["NodeRunner", "NodeStopped", "RunnerError", "chain_unreachable", "configure_logging"]


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
        self._nursery: trio.Nursery | None = None
        self.catchup = CatchUp(self)
        self.setup = StandardizerSync(self)
        self.campaign = Campaign(self, self.catchup, RoundOpener(self), self._stage_times)

    @property
    def peer(self) -> HospitalPeer:
        """The round pipeline (:meth:`build` makes it)."""
        if self._peer is None:
            raise RunnerError("the node is not built yet: NodeRunner.build() makes its peer")
        return self._peer

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
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
        self.campaign.bind()
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
        """Add the wall time of each of the peer's pipeline stages to the round's totals."""
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
            self.adopt(state.params, state.params_round)
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

    def adopt(self, params: np.ndarray, round_: int) -> None:
        """Take ``params`` (round ``round_``'s finalized aggregate) as the global parameters."""
        self.peer.global_params = params.astype(np.float32)
        load_flat_parameters(self.peer.model, self.peer.global_params)
        self.params_round = round_

    def save(self) -> None:
        """Write the node's state (parameters, rounds, standardizer) atomically."""
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
                    await self.setup.agree()
                    stopped: NodeStopped | None = None
                    try:
                        await self.campaign.run()
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

    async def _on_blob(self, from_peer: str, kind: str, data: bytes) -> None:
        """Route a blob the host received to the room it is for (the peer's by default)."""
        if kind == setupsync.REQUEST_KIND:
            self.setup.answer(from_peer)
        elif kind == setupsync.OFFER_KIND:
            self.setup.take_offer(from_peer, data)
        elif kind == modelsync.REQUEST_KIND:
            self.catchup.answer(from_peer, data)
        elif kind == modelsync.MODEL_KIND:
            self.catchup.take_offer(data)
        else:
            await self.peer.handle_blob(from_peer, kind, data)


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
