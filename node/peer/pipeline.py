"""A hospital peer: its data, model, privacy ledger, libp2p host and chain client, and the
round pipeline that ties them together.

One round, as seen by one peer::

    train -> protect -> commit -> hold -> gossip -> verify -> aggregate -> attest -> finalize -> credit

:class:`HospitalPeer` is the orchestrator: it holds the shared state (the model and its global
parameters, the last adopted step and accepted updates, the last completed round) and runs the
stages in order (:meth:`HospitalPeer.run_round`), each marked on its :class:`StageClock`. Each
stage lives in its own room of :mod:`node.peer`, a collaborator that sees a :class:`PeerCore`
and the callables the peer hands it, never the peer.

A peer sends its blob only once every member has committed or the commit window has closed
(:mod:`node.peer.reveal`): no member can copy a current-round update into its own commitment.

The chain is the source of truth (who is registered, who committed which hash, which
aggregate finalized); gossip carries hints and blobs. Nothing a remote peer sends can change
this peer's model except through an aggregate this peer computed itself from updates whose
hashes were committed on chain and whose signatures verify.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import trio

from gossip import Transport
from ledger import Identity, LedgerClient, LedgerError
from node.consensus.attested import AttestedPair
from node.consensus.compression import UpdateCodec
from node.consensus.update import parameters_hash
from node.data.samples import LabelledData, Standardizer
from node.learning.models import build_model, flat_parameters, load_flat_parameters
from node.learning.privacy import PrivacyLedger
from node.monitoring.stagetimes import StageClock
from node.peer.committee import RoundCommittee
from node.peer.contribute import ROUND_ERRORS, Contribution
from node.peer.control import ControlTopics
from node.peer.core import PeerCore
from node.peer.deadlines import DeadlineBounds, WaitClock
from node.peer.directory import Directory
from node.peer.finalize import Finalizer
from node.peer.identity import NodeIdentity
from node.peer.intake import Intake
from node.peer.latejoin import LateJoin
from node.peer.mods import LeaveRound, ModChain, PeerMod
from node.peer.outbox import Outbox
from node.peer.outcome import PeerLog, RoundOutcome
from node.peer.roundbeacon import RoundSecrets
from node.peer.settings import PeerSettings
from node.peer.standardize import FeatureSetup
from node.peer.trainer import LocalTrainer
from node.peer.verify import Verifier, update_delta
from node.protection import MODE_CODES, ModeContext, ProtectionMode, make_mode

__all__ = ["PeerSettings", "RoundOutcome", "HospitalPeer", "MODE_SEALED"]

MODE_SEALED = MODE_CODES["sealed"]  # protection mode recorded on chain with each commit
DEFAULT_SETTINGS = PeerSettings()


class HospitalPeer:
    """One hospital in the federation. Create it, ``await start()``-style tasks in a nursery
    (:meth:`serve`), agree on the standardizer, then run rounds."""

    def __init__(
        self,
        identity: NodeIdentity,
        raw_data: LabelledData,
        ledger: LedgerClient,
        host: Transport,
        privacy: PrivacyLedger,
        settings: PeerSettings = DEFAULT_SETTINGS,
        *,
        mods: Sequence[PeerMod] = (),
    ) -> None:
        self.identity = identity
        self.name = identity.institution
        self.address = identity.address
        self.raw_data = raw_data
        self.data: LabelledData | None = None
        self.standardizer: Standardizer | None = None
        self.ledger = ledger
        self.host = host
        self.privacy = privacy
        self.log = PeerLog(logging.getLogger("medmesh.peer"), self.name)
        self.model = build_model(settings.model, input_shape=raw_data.input_shape, seed=0)
        self.global_params = flat_parameters(self.model)
        self.last_step: np.ndarray | None = None  # the last adopted global step (free-rider screen)
        # the last adopted round and its accepted updates (address -> delta; free-rider screen)
        self.last_accepted: tuple[int, dict[str, np.ndarray]] = (0, {})
        self.completed_round = 0
        self.control = ControlTopics(host, log=self.log)  # hints and the background nursery
        # the blob and quorum waits, derived from measured training time and transfer rate
        self.waits = WaitClock(DeadlineBounds.of(settings))
        self.codec = UpdateCodec(settings.compression, self.global_params.size)
        self.clock = StageClock()  # the stages' marks; monitors and benchmarks subscribe
        self.mods = ModChain(self, mods)  # node.peer.mods: hooks around the round
        ledger.observers.append(self._time_chain)
        self.directory = Directory(ledger, self.address)
        self.core = core = PeerCore(
            self.address, ledger, host, self.log, self.directory, settings, self.waits, self.clock
        )
        # used only by modes that draw from the beacon (ckks)
        self.beacon = RoundSecrets(
            ledger,
            self.address,
            self.log,
            poke=self.control.poke,
            chain_changed=lambda: self.control.chain_hint().wait(),
        )
        self.committee = RoundCommittee(self)  # the round's aggregators (docs/committee.md)
        core.protection = make_mode(self.mode_context())
        self.trainer = LocalTrainer(
            core,
            raw_data,
            privacy,
            model=lambda: self.model,
            data=lambda: self.data,
            params=lambda: self.global_params,
        )
        self.setup = FeatureSetup(core, identity, raw_data, self.trainer.public_count)
        self.intake = Intake(
            core,
            self.mods,
            self.committee,
            completed=lambda: self.completed_round,
            spawn=self.background_task,
        )
        self.outbox = Outbox(
            core,
            privacy,
            deliver=self._deliver,
            nursery=lambda: self.control.background,
            chain_hint=self.chain_hint,
        )
        self.verifier = Verifier(
            core,
            self.intake,
            commits_final=self.outbox.commits_final,
            last_step=lambda: self.last_step,
            earlier=self.earlier_updates,
        )
        self.contribution = Contribution(
            core, self.mods, self.trainer, privacy, self.outbox, announce=self.control.announce
        )
        self.late = LateJoin(core, self.intake, self.verifier, self._aggregate)
        self.finalizer = Finalizer(core, self.committee, self.control)
        host.on_blob(self.handle_blob)

    @property
    def settings(self) -> PeerSettings:
        """The pipeline's settings, which every room reads (a benchmark may replace them)."""
        return self.core.settings

    @settings.setter
    def settings(self, settings: PeerSettings) -> None:
        self.core.settings = settings

    @property
    def protection(self) -> ProtectionMode:
        """The consortium's protection mode (:mod:`node.protection`), which every room reads."""
        return self.core.protection

    @protection.setter
    def protection(self, mode: ProtectionMode) -> None:
        self.core.protection = mode

    def mode_context(self) -> ModeContext:
        """What a protection mode sees of this peer (its settings and codec as they are now)."""
        return ModeContext(
            self.identity,
            self.ledger,
            self.settings,
            self.codec,
            self.log,
            self.privacy.path,
            read_members=self.active_members,
            read_params=lambda: self.global_params,
            transport=self._deliver,
            beacon=self.beacon,
            committee=self.committee.members,
            draw_committee=self.committee.seats_now,
        )

    async def _deliver(self, recipient: Identity, blob: bytes, kind: str) -> None:
        """Send one blob to one member, as this peer's mods (:mod:`node.peer.mods`) let it."""
        out = await self.mods.outgoing(recipient, kind, blob)
        if out is not None:
            await self.host.send_blob(recipient.peer_id, out, kind=kind)

    def _time_chain(self, op: str) -> AbstractContextManager[None]:
        return self.clock.stage("chain.call" if op == "call" else "chain.send")

    # -- registry view (node.peer.directory) ---------------------------------------------
    def refresh_directory(self) -> None:
        """Re-read the registry: peer ID -> identity of every registered hospital."""
        self.directory.refresh()

    def authorize(self, peer_id: str) -> bool:
        """Gate for every inbound stream and pubsub message: registered and active only."""
        return self.directory.authorize(peer_id)

    def identity_of(self, peer_id: str) -> Identity | None:
        """The registered identity behind a libp2p peer ID (any status), or None."""
        return self.directory.identity_of(peer_id)

    def active_members(self) -> list[Identity]:
        """The active members, this peer included, in canonical order."""
        return self.directory.active_members()

    def others(self) -> list[Identity]:
        """The active members but this peer, in canonical order."""
        return self.directory.others()

    # -- the control plane (node.peer.control) ------------------------------------------
    async def serve(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen to the control topics until cancelled."""
        await self.control.serve(self.setup.listen, task_status)

    def chain_hint(self) -> trio.Event:
        """The event the next round-topic hint sets (:meth:`ControlTopics.chain_hint`)."""
        return self.control.chain_hint()

    def background_task(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn(*args)`` in the peer's background nursery (it must be serving)."""
        self.control.spawn(fn, *args)

    # -- blobs received (node.peer.intake) -----------------------------------------------
    async def handle_blob(self, from_peer: str, kind: str, data: bytes) -> None:
        """Stream handler: file a blob from a registered peer under its claimed round.

        Raising here makes the gossip layer answer the sender with a rejection.
        """
        await self.intake.receive(from_peer, kind, data)

    def at_chain_round(self, round_: int) -> None:
        """The schedule read ``round_`` as the chain's current round: drop what is held for
        earlier rounds this peer never ran (:meth:`node.peer.intake.Intake.at_chain_round`)."""
        self.intake.at_chain_round(round_)

    # -- set-up (node.peer.standardize) --------------------------------------------------
    async def agree_standardizer(self, timeout: float = 30.0) -> Standardizer | None:
        """Fix the z-scorer every member applies (:meth:`node.peer.standardize.FeatureSetup.agree`)
        and the data the model trains on; None for images (their loaders scale the pixels)."""
        self.data, self.standardizer = await self.setup.agree(timeout)
        return self.standardizer

    # -- the round pipeline --------------------------------------------------------------
    async def open_round(self) -> int:
        """Open the next round on chain (:meth:`node.peer.finalize.Finalizer.open_round`)."""
        return await self.finalizer.open_round()

    @property
    def draws_beacon(self) -> bool:
        """Whether this peer takes part in the beacon: its mode draws from it (ckks), or the
        consortium draws committees."""
        return self.protection.uses_beacon or self.committee.enabled

    def join_beacon(self) -> None:
        """Before this peer's first round: commit a beacon secret for the next round, if the
        consortium draws from the beacon (later rounds commit at their start)."""
        if self.draws_beacon:
            try:
                self.beacon.commit_next()
            except LedgerError as exc:  # e.g. the round opened meanwhile: sits out its draw
                self.log.error("beacon: %s", exc)

    async def run_round(self, round_: int) -> RoundOutcome:
        """Run one round to the end; never raises for a remote peer's fault."""
        out = RoundOutcome(round_)
        try:
            return await self._run_stages(out)
        except LeaveRound as exc:  # a mod (node.peer.mods) took this peer out of the round
            self.log.warning("left the round: %s", exc, round=round_)
            out.error = str(exc)
            return out

    async def _run_stages(self, out: RoundOutcome) -> RoundOutcome:
        round_, clock = out.round, self.clock
        with clock.stage("directory"):
            self.refresh_directory()
        if self.draws_beacon:
            await self.beacon.start_round(round_)
        if not await self.committee.ready(out):
            return out
        update = await self.contribution.run(out)
        if not self.committee.seated(round_):  # a follower: fetches the finalized aggregate
            return await self._finish(out, None)
        await self.mods.verifying(round_)
        with clock.stage("verify"):
            updates, out.rejected = await self.verifier.verify(round_, own=update)
        self.mods.verified(round_, updates, out.rejected)
        if not updates:
            out.error = out.error or "no verified updates"
            self.protection.end_round(round_)
            return out
        new_params = None
        try:
            with clock.stage("aggregate"):
                new_params, out.accepted = await self._aggregate(round_, updates)
        except ROUND_ERRORS as exc:  # e.g. secagg could not unmask: too many peers dropped out
            self.log.error("aggregation failed: %s", exc, round=round_)
            out.error = str(exc)
        finally:
            await self.mods.aggregated(round_, updates, new_params)
        if new_params is None:
            self._end_round(round_)
            return out
        decided = await self.late.decide(out, updates, new_params)
        if decided is None:  # cut off from most members: its aggregate could only conflict
            self._end_round(round_)
            return out
        new_params, out.accepted, updates = decided
        with clock.stage("record_rejections"):
            self.verifier.record_rejections(round_, out.rejected)
        return await self._vote(out, new_params, updates)

    async def _aggregate(
        self, round_: int, opened: dict[str, object]
    ) -> tuple[np.ndarray, list[str]]:
        """The new global parameters and the accepted senders, as the protection mode says."""
        result = await self.protection.aggregate(round_, opened)
        return result.params, result.accepted

    async def _vote(
        self, out: RoundOutcome, new_params: np.ndarray, updates: dict[str, object]
    ) -> RoundOutcome:
        """Attest ``new_params`` with ``out.accepted`` (aggregated from ``updates``), wait for
        the quorum, end the round; keep the accepted updates if the round adopted it."""
        await self.finalizer.attest(out, new_params)
        await self._finish(out, new_params)
        if self.global_params is new_params and not self.protection.sum_only:  # adopted
            self.last_accepted = (out.round, {a: update_delta(updates[a]) for a in out.accepted})
        return out

    async def _finish(self, out: RoundOutcome, new_params: np.ndarray | None) -> RoundOutcome:
        """The round's last stage: finalize and adopt (``new_params`` None: off the committee,
        the aggregate comes from a committee member), then forget the round's state."""
        with self.clock.stage("finalize"):
            adopt = await self.finalizer.settle(out, new_params)
            if adopt is not None:
                self._adopt(out.round, adopt)
        self._end_round(out.round)
        return out

    def _adopt(self, round_: int, new_params: np.ndarray) -> None:
        """Make the finalized aggregate of ``round_`` this peer's model."""
        self.last_step = (new_params - self.global_params).astype(np.float32)
        self.global_params = new_params
        load_flat_parameters(self.model, new_params)
        self.committee.keep(round_, new_params)
        self.log.info("adopted aggregate %s", parameters_hash(new_params).hex()[:12], round=round_)

    def _end_round(self, round_: int) -> None:
        self.completed_round = max(self.completed_round, round_)
        self.committee.end_round(round_)
        self.intake.end_round(round_)
        self.outbox.end_round(round_)
        self.protection.end_round(round_)

    def attested_lead(self, round_: int) -> AttestedPair | None:
        """The pair more than ``f`` other members attested in ``round_`` (None: none yet)."""
        return self.late.lead(round_)

    async def vote_attested(self, round_: int) -> RoundOutcome:
        """Give ``round_`` its quorum without an update of this member's own (issue 17.5 under
        commit before reveal): back after the round's commit window closed, it votes for the
        pair more than ``f`` others attested if it reproduces it
        (:meth:`node.peer.latejoin.LateJoin.reproduce`), and trains from the next round. With a
        committee (docs/committee.md) only a seated member votes; a follower fetches the
        finalized aggregate as in a round it ran."""
        out = RoundOutcome(round_)
        self.refresh_directory()
        if not await self.committee.ready(out):
            return out
        if self.committee.enabled and not self.committee.seated(round_):
            return await self._finish(out, None)
        lead = self.attested_lead(round_)
        if lead is None or self.protection.sum_only:  # a sum-only mode reveals no update to check
            out.error = "no attested pair this member can check without an update of its own"
            return out
        adopted = await self.late.reproduce(out, lead)
        if adopted is None:
            self._end_round(round_)
            return out
        new_params, out.accepted, inputs = adopted
        return await self._vote(out, new_params, inputs)

    def earlier_updates(self, round_: int) -> dict[str, np.ndarray] | None:
        """The previous round's accepted updates for the free-rider screen, if this peer adopted
        that round; None with a committee, where only members seated in both rounds hold them:
        the seated members must screen alike, or their accepted sets (and votes) split."""
        adopted_round, earlier = self.last_accepted
        if adopted_round != round_ - 1 or self.committee.enabled:
            return None
        return earlier

    async def drain_sends(self) -> None:
        """Return once no update transfer is in flight (:meth:`node.peer.outbox.Outbox.drain_sends`)."""
        await self.outbox.drain_sends()
