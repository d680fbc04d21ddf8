"""A hospital peer: its data, model, privacy ledger, libp2p host and chain client, and the
round pipeline that ties them together.

One round, as seen by one peer (each stage is one method below)::

    train -> protect -> commit -> hold -> gossip -> verify -> aggregate -> attest -> finalize -> credit

A peer sends its blob only once every member has committed or the commit window has closed
(:mod:`node.peer.reveal`): no member can copy a current-round update into its own commitment.

The chain is the source of truth (who is registered, who committed which hash, which
aggregate finalized); gossip carries hints and blobs. Nothing a remote peer sends can change
this peer's model except through an aggregate this peer computed itself from updates whose
hashes were committed on chain and whose signatures verify.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager

import numpy as np
import trio

from gossip import BlobRejected, Transport
from ledger import Commitment, Identity, LedgerClient, LedgerError
from ledger.records import PrivacyBudget, RoundInfo
from node.consensus import protocol
from node.consensus.attested import AttestedPair, adopt_attested, attested_pairs, leading_pair
from node.consensus.compression import UpdateCodec
from node.consensus.freeriding import screen_free_riders
from node.consensus.update import ModelUpdate, parameters_hash
from node.crypto.sealing import SealError, blob_hash, peek_context
from node.data import scaling
from node.data.samples import FeatureStats, ImageData, LabelledData, Standardizer
from node.errors import MedmeshError, NotAuthorized, NotHeld
from node.learning.models import build_model, flat_parameters, load_flat_parameters, model_input
from node.learning.privacy import BudgetExhausted, PrivacyLedger
from node.learning.training import round_train_config, train_local
from node.monitoring.stagetimes import StageClock
from node.peer import relay, reveal, setupsum
from node.peer.committee import KINDS as COMMITTEE_KINDS
from node.peer.committee import RoundCommittee
from node.peer.deadlines import DeadlineBounds, WaitClock
from node.peer.identity import NodeIdentity
from node.peer.mods import LeaveRound, ModChain, PeerMod
from node.peer.outcome import PeerLog, RoundOutcome
from node.peer.roundbeacon import RoundSecrets
from node.peer.settings import PeerSettings
from node.protection import MODE_CODES, ModeContext, make_mode
from node.protection import (
    Rejected as _Rejected,
)

__all__ = ["PeerSettings", "RoundOutcome", "HospitalPeer", "MODE_SEALED"]

MODE_SEALED = MODE_CODES["sealed"]  # protection mode recorded on chain with each commit
RELAY_AFTER = 0.5  # share of round_timeout to wait for direct transfers before pulling via relay
KEEP_ROUNDS = 2  # completed rounds whose blobs a peer keeps for relaying
RELAY_WAIT_S = 30.0  # how long one holder that accepted a relay request has to deliver the blob
#: what a round stage may raise for a remote peer's fault or the chain's refusal (node.errors);
#: anything else is a programming error and propagates
ROUND_ERRORS = (MedmeshError, LedgerError)
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
        self.settings = settings
        self.log = PeerLog(logging.getLogger("medmesh.peer"), self.name)
        self.model = build_model(settings.model, input_shape=raw_data.input_shape, seed=0)
        self.global_params = flat_parameters(self.model)
        self.last_step: np.ndarray | None = None  # the last adopted global step (free-rider screen)
        # the last adopted round and its accepted updates (address -> delta; free-rider screen)
        self.last_accepted: tuple[int, dict[str, np.ndarray]] = (0, {})
        self.completed_round = 0
        # the chain's current round as last read by the schedule (node.service.runner); when set, blobs
        # are held only for it and the next one, so a member cannot park blobs for other rounds
        self.chain_round: int | None = None
        self._directory: dict[str, Identity] = {}
        self._inbox: dict[int, dict[str, bytes]] = defaultdict(dict)
        self._inbox_changed = trio.Event()
        self._chain_changed = trio.Event()
        self._stats: dict[str, FeatureStats] = {}
        self._stats_refused: dict[str, str] = {}  # sender -> why its feature sums were refused
        self._masked: dict[
            str, np.ndarray
        ] = {}  # sender -> its masked set-up sum (node.peer.setupsum)
        self._stats_changed = trio.Event()
        self._relayed: set[tuple[str, int, str]] = set()  # (requester, round, committer) answered
        self._kept: dict[
            int, dict[str, bytes]
        ] = {}  # the last completed rounds' blobs, for relaying
        self.relay_counts: dict[str, int] = defaultdict(int)  # requested, served, accepted, refused
        self._background: trio.Nursery | None = None
        self._sending = 0  # update transfers in flight in the background
        self._sends_drained: trio.Event | None = None  # set when _sending falls to 0 (drain_sends)
        self._budget_declared = False
        self._commits_final: set[int] = (
            set()
        )  # rounds whose reveal hold ended: no commitment can be added
        # the blob and quorum waits, derived from measured training time and transfer rate
        self.waits = WaitClock(
            DeadlineBounds(
                settings.round_timeout,
                max(settings.round_timeout, settings.round_timeout_max),
                settings.assumed_link_mbit,
            )
        )
        self.codec = UpdateCodec(settings.compression, self.global_params.size)
        self.clock = (
            StageClock()
        )  # the pipeline marks its stages; monitors and benchmarks subscribe
        self.mods = ModChain(
            self, mods
        )  # node.peer.mods: hooks around the round (tests, benchmarks, monitor)
        ledger.observers.append(self._time_chain)
        # used only by modes that draw from the beacon (ckks)
        self.beacon = RoundSecrets(
            ledger,
            self.address,
            self.log,
            poke=lambda: self._poke(chain=True),
            chain_changed=lambda: self._chain_changed.wait(),
        )
        self.committee = RoundCommittee(self)  # the round's aggregators (docs/committee.md)
        self.protection = make_mode(self.mode_context())
        host.on_blob(self.handle_blob)

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
        )

    async def _deliver(self, recipient: Identity, blob: bytes, kind: str) -> None:
        """Send one blob to one member, as this peer's mods (:mod:`node.peer.mods`) let it."""
        out = await self.mods.outgoing(recipient, kind, blob)
        if out is not None:
            await self.host.send_blob(recipient.peer_id, out, kind=kind)

    def _time_chain(self, op: str) -> AbstractContextManager[None]:
        return self.clock.stage("chain.call" if op == "call" else "chain.send")

    # -- registry view -----------------------------------------------------------------
    def refresh_directory(self) -> None:
        """Re-read the registry: peer ID -> identity of every registered hospital."""
        self._directory = {i.peer_id: i for i in self.ledger.identities()}

    def authorize(self, peer_id: str) -> bool:
        """Gate for every inbound stream and pubsub message: registered and active only."""
        ident = self._directory.get(peer_id)
        return ident is not None and ident.status == "active"

    def identity_of(self, peer_id: str) -> Identity | None:
        """The registered identity behind a libp2p peer ID (any status), or None."""
        return self._directory.get(peer_id)

    def active_members(self) -> list[Identity]:
        return sorted(
            (i for i in self._directory.values() if i.status == "active"),
            key=lambda i: i.address.lower(),
        )

    def others(self) -> list[Identity]:
        """The active members but this peer, in canonical order."""
        return [i for i in self.active_members() if i.address != self.address]

    # -- background tasks --------------------------------------------------------------
    async def serve(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Listen to the control topics until cancelled."""
        async with trio.open_nursery() as nursery:
            self._background = nursery
            rounds = await self.host.subscribe(protocol.ROUND_TOPIC)
            setup = await self.host.subscribe(protocol.SETUP_TOPIC)
            nursery.start_soon(self._listen_rounds, rounds)
            nursery.start_soon(self._listen_setup, setup)
            task_status.started()

    async def _listen_rounds(self, subscription) -> None:
        async for msg in subscription:
            try:
                protocol.decode(msg.data)
            except protocol.ControlError as exc:
                self.log.warning("dropped control message from %s: %s", msg.from_peer[:12], exc)
                continue
            self._poke(chain=True)

    async def _listen_setup(self, subscription) -> None:
        async for msg in subscription:
            try:
                shared = protocol.decode(msg.data)
                ident = self._directory.get(msg.from_peer)
                if not isinstance(shared, protocol.StatsShared) or ident is None:
                    raise protocol.ControlError("not a stats message from a registered peer")
                if shared.sender.lower() != ident.address.lower():
                    raise protocol.ControlError(
                        f"stats claim sender {shared.sender}, signed by {ident.address}"
                    )
            except (protocol.ControlError, ValueError) as exc:
                self.log.warning("dropped setup message from %s: %s", msg.from_peer[:12], exc)
                continue
            if ident.address == self.address:
                continue  # our own message, echoed by pubsub
            if (
                ident.address in self._stats
                or ident.address in self._stats_refused
                or ident.address in self._masked
            ):
                self.log.warning(
                    "ignored a second feature summary from %s; the first one stands", ident.address
                )
                continue
            features = self.raw_data.x[0].size
            try:
                if "masked" in shared.stats:
                    self._masked[ident.address] = setupsum.decode_masked(
                        shared.stats["masked"], 2 * features + 1
                    )
                else:
                    stats = FeatureStats.from_json(shared.stats)
                    scaling.check_stats(stats, features)
                    self._stats[ident.address] = stats
            except (ValueError, KeyError, TypeError) as exc:
                self._stats_refused[ident.address] = str(exc)
                self.log.warning("refused the feature summary of %s: %s", ident.address, exc)
            self._stats_changed.set()
            self._stats_changed = trio.Event()

    def chain_hint(self) -> trio.Event:
        """The event the next round-topic hint sets (a round opened, an update committed, an
        aggregate attested). Take it *before* reading the chain, then wait on it with a poll
        interval as the bound: a hint only says when to read the chain again, never what it holds,
        and one that arrives between the read and the wait is not missed (issue 22)."""
        return self._chain_changed

    def _poke(self, *, chain: bool = False, inbox: bool = False) -> None:
        if chain:
            self._chain_changed.set()
            self._chain_changed = trio.Event()
        if inbox:
            self._inbox_changed.set()
            self._inbox_changed = trio.Event()

    async def handle_blob(self, from_peer: str, kind: str, data: bytes) -> None:
        """Stream handler: file a blob from a registered peer under its claimed round.

        Raising here makes the gossip layer answer the sender with a rejection.
        """
        ident = self._directory.get(from_peer)
        if ident is None or ident.status != "active":
            raise NotAuthorized(f"peer {from_peer[:16]} is not an active registered hospital")
        if not await self.mods.incoming(ident, kind, data):
            return
        if kind == relay.REQUEST_KIND:
            self._serve_relay(ident, relay.decode_request(data))
            return
        if kind == relay.RELAY_KIND:
            self._accept_relayed(ident, *relay.decode_relay(data))
            return
        if kind in COMMITTEE_KINDS:
            await self.committee.on_blob(ident, kind, data)
            return
        ctx = self.protection.peek(data)
        if ctx.sender != ident.address.lower():
            raise SealError(f"blob claims sender {ctx.sender} but came from {ident.address}")
        if ctx.round <= self.completed_round:
            raise SealError(
                f"blob for round {ctx.round}, which this peer already completed (replay?)"
            )
        if (
            self.chain_round is not None
            and not self.chain_round <= ctx.round <= self.chain_round + 1
        ):
            raise SealError(
                f"blob for round {ctx.round}; the chain is at round {self.chain_round}, and blobs are "
                f"held only for the current and the next round"
            )
        if kind != "update":
            await self.protection.on_message(ident, kind, data)
            return
        box = self._inbox[ctx.round]
        if ident.address in box and box[ident.address] != data:
            self.log.warning(
                "%s sent two different blobs (equivocation); keeping the first",
                ident.address,
                round=ctx.round,
            )
            raise SealError("a different blob for this round was already received from you")
        box[ident.address] = data
        self._poke(inbox=True)

    # -- relay (node.peer.relay): a committed blob that missed its direct transfer ----------------
    def _member(self, address: str) -> Identity | None:
        return next(
            (i for i in self._directory.values() if i.address.lower() == address.lower()), None
        )

    def _serve_relay(self, requester: Identity, req: relay.RelayRequest) -> None:
        """Accept a relay request only for a blob this peer holds with exactly that hash."""
        if not self.protection.relays_updates:
            raise NotAuthorized(f"protection mode {self.protection.name} does not relay updates")
        committer = self._member(req.committer)
        held = self.held_blobs(req.round)
        blob = held.get(committer.address) if committer is not None else None
        if blob is None or blob_hash(blob).hex() != req.update_hash.lower():
            raise NotHeld(f"this peer holds no blob {req.update_hash[:12]} from {req.committer}")
        key = (requester.address, req.round, committer.address)
        if key in self._relayed:
            raise NotAuthorized("this blob was already relayed to you")
        self._relayed.add(key)
        payload = relay.encode_relay(committer.address, blob)
        if self._background is None:
            raise RuntimeError("peer is not serving")
        self._background.start_soon(
            self._send_relay, requester, req.round, committer.address, payload
        )

    async def _send_relay(
        self, requester: Identity, round_: int, committer: str, payload: bytes
    ) -> None:
        try:
            await self.host.send_blob(requester.peer_id, payload, kind=relay.RELAY_KIND)
            self.relay_counts["served"] += 1
            self.log.info("relayed %s's update to %s", committer, requester.address, round=round_)
        except Exception as exc:
            self.log.warning(
                "could not relay %s's update to %s: %s",
                committer,
                requester.address,
                exc,
                round=round_,
            )

    def _accept_relayed(self, relayer: Identity, committer_address: str, blob: bytes) -> None:
        """File a relayed blob only if its hash is the committer's commitment on chain."""
        committer = self._member(committer_address)
        if committer is None or committer.status != "active":
            raise NotAuthorized(f"relayed blob of {committer_address}, not an active member")
        ctx = peek_context(blob)
        if ctx.sender != committer.address.lower():
            raise SealError(f"relayed blob claims sender {ctx.sender}, not {committer.address}")
        if ctx.round <= self.completed_round:
            raise SealError(
                f"relayed blob for round {ctx.round}, which this peer already completed"
            )
        commitment = self.ledger.commitment(ctx.round, committer.address)
        if commitment is None or blob_hash(blob) != commitment.update_hash:
            self.relay_counts["refused"] += 1
            self.log.warning(
                "refused %s's update relayed by %s: hash differs from the commitment on chain",
                committer.address,
                relayer.address,
                round=ctx.round,
            )
            raise SealError("relayed blob does not match the commitment on chain")
        box = self._inbox[ctx.round]
        if committer.address not in box:
            box[committer.address] = blob
            self.relay_counts["accepted"] += 1
            self.log.info(
                "got %s's update relayed by %s", committer.address, relayer.address, round=ctx.round
            )
            self._poke(inbox=True)

    async def _pull_missing(self, round_: int, missing: set[str]) -> None:
        """Ask the other peers, one after another, for each committed blob still missing."""
        commitments = self.ledger.commitments(round_)
        async with trio.open_nursery() as nursery:
            for sender in sorted(missing & set(commitments)):
                nursery.start_soon(self._pull_one, round_, commitments[sender])

    async def _pull_one(self, round_: int, commitment: Commitment) -> None:
        sender = commitment.address
        req = relay.encode_request(
            relay.RelayRequest(round_, sender.lower(), commitment.update_hash.hex())
        )
        members = self.active_members()
        start = next((i + 1 for i, m in enumerate(members) if m.address == self.address), 0)
        for holder in members[start:] + members[:start]:  # each peer asks its successors first
            if sender in self._inbox[round_]:
                return
            if holder.address in (sender, self.address):
                continue
            self.relay_counts["requested"] += 1
            try:
                await self.host.send_blob(holder.peer_id, req, kind=relay.REQUEST_KIND)
            except BlobRejected:
                continue  # it does not hold that blob: ask the next peer
            except Exception as exc:
                self.log.debug("relay request to %s failed: %s", holder.address, exc, round=round_)
                continue
            with trio.move_on_after(RELAY_WAIT_S):
                while sender not in self._inbox[round_]:  # it accepted: the blob is on its way
                    await self._inbox_changed.wait()

    def inbox(self, round_: int) -> Mapping[str, bytes]:
        """The blobs received for ``round_`` so far (sender address -> blob), a copy."""
        return dict(self._inbox.get(round_, {}))

    def held_blobs(self, round_: int) -> Mapping[str, bytes]:
        """The blobs this peer holds for ``round_`` (sender address -> blob): while the round runs,
        and for the last ``KEEP_ROUNDS`` completed rounds, which it keeps for relaying."""
        return self._inbox.get(round_) or self._kept.get(round_, {})

    async def await_blobs(self, round_: int, expected: set[str], timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) until each of ``expected`` sent its blob for ``round_``."""
        with trio.move_on_after(max(timeout, 0.0)):
            while not expected <= set(self._inbox[round_]):
                await self._inbox_changed.wait()

    # -- set-up ------------------------------------------------------------------------
    async def agree_standardizer(self, timeout: float = 30.0) -> Standardizer | None:
        """Fix the z-scorer every member applies (:mod:`node.data.scaling`).

        With public ``feature_bounds`` nothing is shared: the scaling follows from the bounds.
        Otherwise each hospital shares its feature sums; each summary is checked, a bad one is
        refused with a warning naming its sender (it neither poisons the scaling nor stalls the
        set-up), and the valid ones are combined by per-feature medians. Images need none: their
        loaders already scale pixels to [0, 1]; a feature model (``imaging-features``) gets them
        mapped once to its fixed features."""
        if isinstance(self.raw_data, ImageData):
            self.data = model_input(self.settings.model, self.raw_data)
            return None
        features = self.raw_data.x[0].size
        bounds = self.settings.feature_bounds
        if bounds is not None:
            if bounds.low.size != features:
                raise ValueError(
                    f"feature bounds for {bounds.low.size} features, the data has {features}"
                )
            self.standardizer = scaling.from_bounds(bounds)
            if self.settings.scaling == "secure":
                self.standardizer = await self._secure_standardizer(bounds, timeout)
            self.data = self.standardizer.apply(self.raw_data)
            return self.standardizer
        mine = FeatureStats.of(self.raw_data).at_count(self.public_count())
        scaling.check_stats(mine, features)
        self._stats[self.address] = mine
        others = self.others()
        await self.host.wait_topic_peers(protocol.SETUP_TOPIC, {i.peer_id for i in others}, timeout)
        await self.host.publish(
            protocol.SETUP_TOPIC,
            protocol.encode(protocol.StatsShared(self.address, mine.to_json())),
        )
        with trio.fail_after(timeout):
            while not all(
                i.address in self._stats or i.address in self._stats_refused for i in others
            ):
                await self._stats_changed.wait()
        sites = [self._stats[i.address] for i in self.active_members() if i.address in self._stats]
        self.standardizer = scaling.robust_combine(sites)
        self.data = self.standardizer.apply(self.raw_data)
        self.log.warning(
            "feature sums of %d sites were shared in the clear, outside the DP budget (no public "
            "feature bounds); %d refused",
            len(sites),
            len(self._stats_refused),
        )
        return self.standardizer

    async def _secure_standardizer(
        self, bounds: scaling.FeatureBounds, timeout: float
    ) -> Standardizer:
        """The pooled z-scorer from a secure sum (:mod:`node.peer.setupsum`); the public bounds' scaling
        if a member's input is missing or the total is implausible (warned)."""
        members = self.active_members()
        keys = {m.address: m.seal_key for m in members}
        deployment = self.ledger.deployment
        context = f"{deployment.chain_id}|{deployment.addresses['RoundLedger'].lower()}".encode()
        mine = setupsum.mask(
            setupsum.site_vector(self.raw_data, bounds, self.public_count()),
            self.address,
            self.identity.seal_private,
            keys,
            context,
        )
        self._masked[self.address] = mine
        others = self.others()
        with trio.move_on_after(timeout):
            await self.host.wait_topic_peers(
                protocol.SETUP_TOPIC, {i.peer_id for i in others}, timeout
            )
        await self.host.publish(
            protocol.SETUP_TOPIC,
            protocol.encode(protocol.StatsShared(self.address, {"masked": [int(v) for v in mine]})),
        )
        with trio.move_on_after(timeout):
            while not all(
                i.address in self._masked or i.address in self._stats_refused for i in others
            ):
                await self._stats_changed.wait()
        fallback = scaling.from_bounds(bounds)
        missing = [i.address for i in others if i.address not in self._masked]
        if missing:
            self.log.warning(
                "no usable masked sum from %s: scaling falls back to the public bounds",
                ", ".join(missing),
            )
            return fallback
        try:
            return setupsum.check_total(
                setupsum.unmask([self._masked[m.address] for m in members]), len(members), bounds
            )
        except setupsum.SetupSumError as exc:
            self.log.warning(
                "the secure sum is implausible (%s): a member's masked input is wrong, and masked "
                "inputs cannot be attributed; scaling falls back to the public bounds",
                exc,
            )
            return fallback

    # -- the round pipeline --------------------------------------------------------------
    async def open_round(self) -> int:
        """Open the next round on chain; a previous round stuck without quorum is first
        failed once its attestation deadline has passed (waiting for that deadline)."""
        previous = self.ledger.current_round()
        if previous and self.ledger.round_info(previous).status == "open":
            await self._fail_stale_round(previous)
        round_ = self.ledger.open_round()
        self.log.info("opened the round", round=round_)
        await self._announce(protocol.RoundOpened(round_, self.address))
        return round_

    @property
    def draws_beacon(self) -> bool:
        """Whether this peer takes part in the beacon: its mode draws from it (ckks), or the
        consortium draws committees."""
        return self.protection.uses_beacon or self.committee.enabled

    def background_task(self, fn, *args) -> None:
        """Run ``fn(*args)`` in the peer's background nursery (it must be serving)."""
        if self._background is None:
            raise RuntimeError("peer is not serving")
        self._background.start_soon(fn, *args)

    def join_beacon(self) -> None:
        """Before this peer's first round: commit a beacon secret for the next round, if the
        consortium draws from the beacon (later rounds commit at their start)."""
        if self.draws_beacon:
            try:
                self.beacon.commit_next()
            except (
                LedgerError
            ) as exc:  # e.g. the round opened meanwhile: this peer sits out its draw
                self.log.error("beacon: %s", exc)

    async def _fail_stale_round(self, round_: int) -> None:
        deadline = self.ledger.round_info(round_).attest_deadline
        wait = deadline - time.time() + 1
        self.log.warning(
            "round is stuck without quorum; failing it after its deadline (%.0f s)",
            max(wait, 0),
            round=round_,
        )
        with trio.fail_after(max(wait, 0) + 30):
            await trio.sleep(max(wait, 0))  # a time deadline on chain: nothing else to await
            while True:
                self.ledger.sync_clock()
                try:
                    self.ledger.fail_round(round_)
                    self.log.info("failed the round", round=round_)
                    return
                except LedgerError as exc:
                    if self.ledger.round_info(round_).status != "open":
                        return  # another peer failed (or finalized) it first
                    self.log.debug("fail_round: %s", exc, round=round_)
                    await trio.sleep(1.0)  # the chain's clock is a block behind ours

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
        if self.committee.enabled:
            try:
                await self.committee.draw(round_)
            except ROUND_ERRORS as exc:  # the beacon failed, or a mode without committees
                self.log.error("no committee: %s", exc, round=round_)
                out.error = str(exc)
                return out
        try:
            with clock.stage("train"):
                update = await self.mods.train(round_, self._train)
        except BudgetExhausted as exc:
            self.log.error("%s", exc, round=round_)
            out.error = str(exc)
            update = None
        if update is not None:
            out.epsilon, out.samples = update.epsilon, update.samples
            self.privacy.save()  # the spent budget is on disk before the update leaves
            try:
                with clock.stage("protect"):
                    blob = await self.mods.protect(update, self._protect)
                self._declare_budget()
                with clock.stage("commit"):
                    self._commit(update, blob)
            except ROUND_ERRORS as exc:  # e.g. the commit window closed (LedgerError), or too few
                self.log.error("leaving this round out: %s", exc, round=round_)  # secagg peers
                out.error, update = str(exc), None
            else:
                await self._announce(
                    protocol.UpdateCommitted(round_, self.address, blob_hash(blob).hex(), len(blob))
                )
                with clock.stage("hold"):
                    out.revealed, out.held_s = await self.mods.hold(round_, self._hold)
                with clock.stage("send"):
                    await self._send(round_, blob)
        if not self.committee.seated(round_):  # a follower: fetches the finalized aggregate
            return await self._finish(out, None)
        await self.mods.verifying(round_)
        with clock.stage("verify"):
            updates, out.rejected = await self._verify(round_, own=update)
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
        joined = await self._join_attested(round_, updates, out.rejected, new_params, out.accepted)
        partial = None if joined[0] is not new_params else self._partial_view(round_, out.rejected)
        if partial is not None:  # cut off from most members: its aggregate could only conflict
            self.log.error("%s", partial, round=round_)
            out.error = partial
            self._end_round(round_)
            return out
        new_params, out.accepted, updates = joined
        for dropped in (
            {a for a, u in updates.items() if u is not None} - set(out.accepted) - {self.address}
        ):
            out.rejected[dropped] = "robust-rule"
        with clock.stage("record_rejections"):
            self._record_rejections(round_, out.rejected)
        return await self._vote(out, new_params, updates)

    async def _vote(
        self, out: RoundOutcome, new_params: np.ndarray, updates: dict[str, object]
    ) -> RoundOutcome:
        """Attest ``new_params`` with ``out.accepted`` (aggregated from ``updates``), wait for
        the quorum, end the round; keep the accepted updates if the round adopted it."""
        round_ = out.round
        out.aggregate_hash = parameters_hash(new_params).hex()
        try:
            # the head we saw goes into the signed vote: our record of the history we attest on
            self.ledger.attest(
                round_, parameters_hash(new_params), out.accepted, seen=self.ledger.chain_head()
            )
            await self._announce(
                protocol.AggregateAttested(round_, self.address, out.aggregate_hash)
            )
        except LedgerError as exc:  # e.g. the round closed first; we may still adopt its aggregate
            self.log.error("attestation failed: %s", exc, round=round_)
            out.error = str(exc)
        await self._finish(out, new_params)
        if self.global_params is new_params and not self.protection.sum_only:  # adopted
            self.last_accepted = (round_, {a: updates[a].delta for a in out.accepted})
        return out

    async def _finish(self, out: RoundOutcome, new_params: np.ndarray | None) -> RoundOutcome:
        """The round's last stage: finalize and adopt (``new_params`` None: off the committee,
        the aggregate comes from a committee member), then forget the round's state."""
        with self.clock.stage("finalize"):
            await self._finalize(out, new_params)
        self._end_round(out.round)
        return out

    def attested_lead(self, round_: int) -> AttestedPair | None:
        """The pair more than ``f`` other members attested in ``round_`` (None: none yet)."""
        pairs = attested_pairs(self.ledger, round_, [i.address for i in self.others()])
        return leading_pair(pairs, self.settings.f)

    async def vote_attested(self, round_: int) -> RoundOutcome:
        """Give ``round_`` its quorum without an update of this member's own (issue 17.5 under
        commit before reveal). A member back after the round's commit window closed (an outage,
        a restart) can no longer commit, and the live members held their blobs until that
        window closed (:mod:`node.peer.reveal`), so it saw no current-round update before. If
        more than ``f`` others attested one pair, it pulls that pair's committed blobs by relay,
        checks each against its commitment on chain, re-aggregates exactly that set with its
        own rule and votes for the pair only if the hash matches
        (:mod:`node.consensus.attested`). It trains from the next round: nothing of its own is
        committed, sent or charged to its privacy budget, and it accuses no one. With a
        committee (docs/committee.md) only a seated member votes; a follower fetches the
        finalized aggregate as in a round it ran."""
        out = RoundOutcome(round_)
        self.refresh_directory()
        if self.committee.enabled:
            try:
                await self.committee.draw(round_)
            except ROUND_ERRORS as exc:  # the beacon failed, or a mode without committees
                out.error = str(exc)
                return out
            if not self.committee.seated(round_):
                return await self._finish(out, None)
        lead = self.attested_lead(round_)
        if lead is None or self.protection.sum_only:  # a sum-only mode reveals no update to check
            out.error = "no attested pair this member can check without an update of its own"
            return out
        commitments = self.ledger.commitments(round_)
        wanted = {a for a in commitments if a.lower() in lead.accepted}
        rejected = {a: "missing-blob" for a in wanted}
        updates: dict[str, object] = {}
        # no stage marks until the vote: the round's stages (STAGES) are the full pipeline's
        with trio.move_on_after(self.waits.deadline(self._room(round_))):
            await self._pull_missing(round_, wanted - set(self._inbox[round_]))
        await self._recheck(round_, wanted & set(self._inbox[round_]), updates, rejected)
        adopted = await adopt_attested(
            [lead], updates, None, lambda inputs: self._aggregate(round_, inputs), f=self.settings.f
        )
        if adopted is None:
            out.rejected = rejected
            out.error = f"the attested pair is not reproducible from {len(updates)} of its {len(wanted)} blobs"
            self._end_round(round_)
            return out
        new_params, out.accepted, inputs = adopted
        self.log.warning(
            "back after the commit window: voting for the pair already attested (%d updates)",
            len(out.accepted),
            round=round_,
        )
        return await self._vote(out, new_params, inputs)

    def _room(self, round_: int) -> float:
        """Seconds left before ``round_``'s attestation deadline, by the chain's clock (its latest
        block; an embedded chain's clock moves only with its blocks, so this errs long)."""
        return self.ledger.round_info(round_).attest_deadline - int(
            self.ledger.w3.eth.get_block("latest")["timestamp"]
        )

    def _partial_view(self, round_: int, rejected: dict[str, str]) -> str | None:
        """Why this peer must neither attest nor accuse anyone this round, or None. When the
        committed blobs it holds are fewer than the chain's quorum (a network partition cut it
        off), the aggregate it could compute differs from any a quorum can finalize: attesting
        it would put a conflicting vote on chain, and recording the missing blobs would accuse
        members that only sat on the other side of the cut. It catches up by hash instead."""
        missing = [s for s, reason in rejected.items() if reason == "missing-blob"]
        if not missing:
            return None
        num, den = self.ledger.ledger_config()["quorum"]
        need = -(-self.ledger.round_info(round_).member_count * num // den)
        held = len(self.ledger.commitments(round_)) - len(missing)
        if held >= need:
            return None
        return (
            f"holds {held} of the committed updates, fewer than the quorum of {need} (the other "
            f"{len(missing)} never arrived): not attesting a partial aggregate"
        )

    async def _join_attested(
        self,
        round_: int,
        updates: dict[str, object],
        rejected: dict[str, str],
        params: np.ndarray,
        accepted: list[str],
    ) -> tuple[np.ndarray, list[str], dict[str, object]]:
        """A late peer votes for the pair already attested if it reproduces it (issue 17.5,
        :mod:`node.consensus.attested`), first pulling by relay (bounded by ``round_timeout``) the
        committed blobs of that pair it missed; otherwise it keeps its own pair."""
        if self.protection.sum_only:
            return params, accepted, updates
        try:
            if not self.ledger.round_info(
                round_
            ).attest_count:  # the first to attest: nothing to read
                return params, accepted, updates
            pairs = attested_pairs(self.ledger, round_, [i.address for i in self.others()])
        except LedgerError as exc:
            self.log.warning("could not read the round's attestations: %s", exc, round=round_)
            return params, accepted, updates
        aggregate = lambda inputs: self._aggregate(round_, inputs)  # noqa: E731
        adopted = await adopt_attested(pairs, updates, params, aggregate, f=self.settings.f)
        lead = leading_pair(pairs, self.settings.f)
        missing = {
            a
            for a in rejected
            if rejected[a] == "missing-blob" and lead and a.lower() in lead.accepted
        }
        if adopted is None and missing and self.protection.relays_updates:
            with trio.move_on_after(self.settings.round_timeout):
                await self._pull_missing(round_, missing)
            await self._recheck(round_, missing & set(self._inbox[round_]), updates, rejected)
            adopted = await adopt_attested(pairs, updates, params, aggregate, f=self.settings.f)
        if adopted is None:
            return params, accepted, updates
        self.log.warning(
            "adopting the pair already attested: %d of %d verified updates",
            len(adopted[2]),
            len(updates),
            round=round_,
        )
        return adopted

    async def _recheck(
        self, round_: int, arrived: set[str], updates: dict[str, object], rejected: dict[str, str]
    ) -> None:
        """Check blobs that arrived after the verify stage; file them as ``_verify`` would."""
        commitments = self.ledger.commitments(round_)
        members = {i.address: i for i in self.active_members()}
        for sender in arrived & set(commitments):
            try:
                updates[sender] = await self._check_off_loop(
                    round_, sender, commitments[sender], members
                )
                del rejected[sender]
            except _Rejected as exc:
                rejected[sender] = exc.reason

    def at_chain_round(self, round_: int) -> None:
        """The schedule read ``round_`` as the chain's current round: drop what is held for
        earlier rounds this peer never ran (rounds it ran moved to ``_kept`` when they ended)."""
        self.chain_round = round_
        for old in [r for r in self._inbox if r < round_]:
            del self._inbox[old]

    def _end_round(self, round_: int) -> None:
        self.completed_round = max(self.completed_round, round_)
        self.committee.end_round(round_)
        # a slower peer may still be verifying this round and need a blob relayed: keep the
        # blobs of the last KEEP_ROUNDS completed rounds (a peer finishes on quorum, not on all)
        self._kept[round_] = self._inbox.pop(round_, {})
        self._commits_final.discard(round_)
        for old in [r for r in self._kept if r <= round_ - KEEP_ROUNDS]:
            del self._kept[old]
        self.protection.end_round(round_)

    def public_count(self) -> int:
        """The row count this hospital publishes and weighs: Ñ, released once per campaign under
        the privacy ledger and capped by the cohort declared at admission (N itself never
        leaves the node; :meth:`node.learning.privacy.PrivacyLedger.release_count`)."""
        return self.privacy.release_count(
            len(self.raw_data), ceiling=self.ledger.cohort_of(self.address) or None
        )

    async def _train(self, round_: int) -> ModelUpdate:
        if self.privacy.config.enabled:
            self.public_count()  # released under the cohort ceiling before train_local reuses it
        cfg = round_train_config(self.settings.train, round_)
        started = time.perf_counter()
        result = await trio.to_thread.run_sync(
            train_local, self.model, self.global_params, self.data, self.privacy, cfg
        )
        self.waits.trained(time.perf_counter() - started)
        self.log.info(
            "trained %d steps on %d samples, epsilon spent %.3f",
            result.steps,
            result.samples,
            result.epsilon,
            round=round_,
        )
        return ModelUpdate(round_, self.address, result.samples, result.epsilon, result.delta)

    async def _protect(self, update: ModelUpdate) -> bytes:
        """The blob this peer commits and sends: the consortium's protection mode decides."""
        return await self.protection.protect(update)

    def privacy_budget(self) -> PrivacyBudget:
        """This hospital's campaign budget as the chain records it (ε = 0: DP off)."""
        c = self.privacy.config
        if not c.enabled:
            return PrivacyBudget(0.0, 0.0, "none", 0.0, c.max_grad_norm)
        return PrivacyBudget(
            self.privacy.cap(), c.delta, c.accountant, float(c.noise_multiplier), c.max_grad_norm
        )

    def _declare_budget(self) -> None:
        """Put the campaign's privacy budget on chain before the first commit (once: the
        contract checks every committed epsilon against it; a different budget recorded
        earlier is an error, since the chain keeps the first)."""
        if not self._budget_declared:
            self.ledger.ensure_privacy_budget(self.privacy_budget())
            self._budget_declared = True

    def _commit(self, update: ModelUpdate, blob: bytes) -> None:
        self.ledger.commit_update(
            update.round, blob_hash(blob), update.samples, update.epsilon, self.protection.code
        )
        self.log.info(
            "committed update %s (%d bytes)",
            blob_hash(blob).hex()[:12],
            len(blob),
            round=update.round,
        )

    async def _hold(self, round_: int) -> tuple[str, float]:
        """Commit before reveal (:mod:`node.peer.reveal`): wait until every active member committed
        or the commit window closed; returns why, and the seconds waited."""
        started = time.perf_counter()
        why = await reveal.hold_until_committed(
            self.ledger,
            round_,
            [m.address for m in self.active_members()],
            lambda: self._chain_changed,
        )
        held = time.perf_counter() - started
        self._commits_final.add(round_)
        self.log.info("revealing the update after %.2f s (%s)", held, why, round=round_)
        return why, held

    async def _send(self, round_: int, blob: bytes) -> None:
        """Send the blob to every recipient concurrently, each transfer bounded by the round's
        deadline (:mod:`node.peer.deadlines` from now), in the background: a slow or frozen receiver holds
        up neither the other transfers nor this peer's verify stage (issue 17.6). A transfer cut
        off by the deadline is what the relay (:mod:`node.peer.relay`) is for."""
        recipients = self.protection.update_recipients(round_)
        self.waits.sending(len(blob), len(recipients))
        deadline = trio.current_time() + self.waits.deadline()

        async def send_one(ident: Identity) -> None:
            try:
                await deliver(ident)
            finally:
                self._sending -= 1
                if self._sending == 0 and self._sends_drained is not None:
                    self._sends_drained.set()

        async def deliver(ident: Identity) -> None:
            with trio.move_on_at(deadline) as scope:
                try:
                    started = trio.current_time()
                    await self._deliver(ident, blob, "update")
                    self.waits.transferred(len(blob), trio.current_time() - started)
                except Exception as exc:  # one unreachable peer must not stop the others
                    self.log.warning(
                        "could not deliver update to %s: %s", ident.address, exc, round=round_
                    )
            if scope.cancelled_caught:
                self.log.warning(
                    "gave up delivering update to %s at the round's deadline",
                    ident.address,
                    round=round_,
                )

        if self._background is None:  # not serving (unit tests): send in place, still bounded
            async with trio.open_nursery() as nursery:
                for ident in recipients:
                    nursery.start_soon(deliver, ident)
            return
        for ident in recipients:
            try:
                self._background.start_soon(send_one, ident)
                self._sending += 1
            except (
                RuntimeError
            ):  # the peer is shutting down (its nursery is closed): nothing to send
                self.log.warning("not sending the update: the peer is stopping", round=round_)
                return

    async def drain_sends(self) -> None:
        """Return once no update transfer is in flight: a node that stops after its last round
        first lets its update reach the peers still waiting for it (each transfer is bounded by
        its round's deadline). Without it, a peer that had not yet received the update sat in
        ``verify`` until its deadline and kept its previous model."""
        while self._sending > 0:
            self._sends_drained = trio.Event()
            await self._sends_drained.wait()
        self._sends_drained = None

    async def _verify(
        self, round_: int, own: ModelUpdate | None
    ) -> tuple[dict[str, object], dict[str, str]]:
        """Wait for the members' blobs (bounded), check each against the chain, then screen out
        free-riders (:mod:`node.consensus.freeriding`) where the mode reveals individual updates; returns
        what the protection mode aggregates (whole updates, masked vectors, ciphertexts)."""
        expected = self.protection.expected_update_senders(round_)
        if (
            round_ in self._commits_final
        ):  # no commitment can be added: wait for the committers' blobs only
            expected &= set(self.ledger.commitments(round_))
        wait, started = self.waits.deadline(self._room(round_)), trio.current_time()
        deadline = started + wait
        await self.await_blobs(round_, expected, wait * RELAY_AFTER)
        missing = expected - set(self._inbox[round_])
        if missing and self.protection.relays_updates:
            self.log.warning("pulling %d missing updates via relay", len(missing), round=round_)
            with trio.move_on_at(deadline):
                await self._pull_missing(round_, missing)
            await self.await_blobs(round_, expected, deadline - trio.current_time())
        commitments = self.ledger.commitments(round_)
        # a committed blob that never came means the wait was too short; a wait that ran out only on a
        # member that committed nothing (absent, cut off) says nothing about the link
        arrived = set(self._inbox[round_])
        self.waits.waited(
            trio.current_time() - started if expected <= arrived else 0.0,
            expected & set(commitments) <= arrived,
            wait,
        )
        members = {i.address: i for i in self.active_members()}
        accepted: dict[str, object] = {}
        rejected: dict[str, str] = {}
        if own is not None:
            accepted[self.address] = self.protection.own(own)
        for sender, commitment in commitments.items():
            if sender == self.address:
                continue
            try:
                accepted[sender] = await self._check_off_loop(round_, sender, commitment, members)
            except _Rejected as exc:
                rejected[sender] = exc.reason
                self.log.warning(
                    "rejected update from %s (%s): %s", sender, exc.reason, exc, round=round_
                )
        for sender in set(self._inbox[round_]) - set(commitments):
            self.log.warning(
                "%s sent a blob but committed nothing on chain; ignored", sender, round=round_
            )
        if self.protection.sum_only:
            return accepted, rejected  # masked or encrypted: nothing to compare
        order = [
            a for a in commitments if a in accepted
        ]  # commit order: of two copies, the later is the copier
        for i, reason in screen_free_riders(
            [accepted[a].delta for a in order],
            self.last_step,
            senders=order,
            earlier=self.earlier_updates(round_),
        ).items():
            if order[i] != self.address:
                rejected[order[i]] = reason
                del accepted[order[i]]
                self.log.warning("rejected update from %s (%s)", order[i], reason, round=round_)
        return accepted, rejected

    def earlier_updates(self, round_: int) -> dict[str, np.ndarray] | None:
        """The previous round's accepted updates for the free-rider screen, if this peer adopted
        that round; None with a committee, where only members seated in both rounds hold them:
        the seated members must screen alike, or their accepted sets (and votes) split."""
        adopted_round, earlier = self.last_accepted
        if adopted_round != round_ - 1 or self.committee.enabled:
            return None
        return earlier

    async def _check_off_loop(
        self, round_: int, sender: str, commitment: Commitment, members: dict[str, Identity]
    ) -> object:
        """:meth:`_check` in a worker thread where the mode allows it (``opens_off_loop``): hashing,
        verifying and decrypting a 4 MB blob is C code that releases the GIL, so the event loop
        keeps serving the other transfers meanwhile (with 16 peers in one process, 240 opens
        would otherwise block it for seconds)."""

        def check() -> object:
            with self.clock.stage("check"):
                return self._check(round_, sender, commitment, members)

        if self.protection.opens_off_loop:
            return await trio.to_thread.run_sync(check)
        return check()

    def _check(
        self, round_: int, sender: str, commitment: Commitment, members: dict[str, Identity]
    ) -> object:
        """Verify one committed update; raise :class:`_Rejected` naming the on-chain reason."""
        blob = self._inbox[round_].get(sender)
        if sender not in members:
            raise _Rejected("not-a-member", "committer is not an active registered hospital")
        cohort = members[sender].cohort
        if (
            commitment.samples > cohort
        ):  # the contract refuses these; a ledger that did not is caught here
            raise _Rejected(
                "samples-above-cohort",
                f"claims {commitment.samples} samples, above the cohort "
                f"of {cohort} its admission endorsed",
            )
        if commitment.mode != self.protection.code:
            raise _Rejected(
                "bad-format",
                f"committed under protection mode {commitment.mode}, the consortium "
                f"uses {self.protection.name} ({self.protection.code})",
            )
        if blob is None:
            if sender not in self.protection.expected_update_senders(round_):
                return None  # not for this peer (ckks: only the aggregator receives ciphertexts)
            raise _Rejected("missing-blob", "committed but its blob never arrived")
        if blob_hash(blob) != commitment.update_hash:
            raise _Rejected(
                "hash-mismatch",
                "blob hash differs from the hash committed on chain (equivocation?)",
            )
        with self.clock.stage("open"):
            return self.protection.open(round_, sender, blob, commitment, members[sender])

    def _record_rejections(self, round_: int, rejected: dict[str, str]) -> None:
        """Put on the record which committed updates this peer refused, and why."""
        if not rejected:
            return
        try:
            self.ledger.record_rejections(round_, dict(rejected))
        except LedgerError as exc:
            self.log.error("could not record rejections: %s", exc, round=round_)

    async def _aggregate(
        self, round_: int, opened: dict[str, object]
    ) -> tuple[np.ndarray, list[str]]:
        """The new global parameters and the accepted senders, as the protection mode says."""
        result = await self.protection.aggregate(round_, opened)
        return result.params, result.accepted

    async def _finalize(self, out: RoundOutcome, new_params: np.ndarray | None) -> None:
        """Finalize once a quorum attested; adopt the finalized aggregate when it is ours (or,
        for a follower, ``new_params`` None, when a committee member sends it with the chain's
        hash). Sets ``out.finalized``."""
        round_ = out.round
        wait = self.waits.deadline()
        if new_params is None:
            # a follower starts waiting when the committee starts waiting for blobs: it waits as
            # long as they may, for the blobs (as _verify bounds it) and then for the quorum
            wait += self.waits.deadline(self._room(round_))
        info = await self._final_word(round_, wait)
        if info.status != "finalized":
            return
        out.finalized = True
        if info.aggregate_hash is None:  # a finalized round always names its aggregate
            return
        if new_params is None:
            new_params = await self.committee.fetch_finalized(out, info.aggregate_hash)
            if new_params is None:
                return
        elif info.aggregate_hash != parameters_hash(new_params):
            self.log.error(
                "the finalized aggregate %s is not ours; keeping the previous model",
                info.aggregate_hash.hex()[:12],
                round=round_,
            )
            return
        self._adopt(round_, new_params)

    async def _final_word(self, round_: int, wait: float) -> RoundInfo:
        """Wait (at most ``wait`` seconds) until ``round_`` is finalized or failed, finalizing
        it once a quorum attested; the round as the chain then has it."""
        info = None
        polled = None  # the head block of the last read: the same block gives the same answers
        with trio.move_on_after(wait):
            while True:
                head = self.ledger.w3.eth.get_block("latest")["hash"]
                if head == polled:
                    with trio.move_on_after(1.0):
                        await self._chain_changed.wait()
                    continue
                polled = head
                info = self.ledger.round_info(round_)
                if info.status in ("finalized", "failed"):
                    break
                if self.ledger.quorum_reached(round_):
                    try:
                        self.ledger.finalize(round_)
                        self.log.info("finalized the round", round=round_)
                    except LedgerError as exc:  # another peer got there first
                        self.log.debug("finalize: %s", exc, round=round_)
                    continue
                if self.ledger.pending_departures(round_) and self.ledger.strike_departures(round_):
                    continue  # a member left mid-round: its vote is struck, the quorum re-read
                with trio.move_on_after(1.0):  # a lost hint only costs a second
                    await self._chain_changed.wait()
        if info is None or info.status not in ("finalized", "failed"):
            info = self.ledger.round_info(round_)  # timed out: read the final word once more
        if info.status == "failed":
            self.log.error("round failed on chain", round=round_)
        elif info.status != "finalized":
            self.log.error("no quorum within %.0f s", wait, round=round_)
        return info

    def _adopt(self, round_: int, new_params: np.ndarray) -> None:
        """Make the finalized aggregate of ``round_`` this peer's model."""
        self.last_step = (new_params - self.global_params).astype(np.float32)
        self.global_params = new_params
        load_flat_parameters(self.model, new_params)
        self.committee.keep(round_, new_params)
        self.log.info("adopted aggregate %s", parameters_hash(new_params).hex()[:12], round=round_)

    async def _announce(self, msg: protocol.ControlMessage) -> None:
        try:
            await self.host.publish(protocol.ROUND_TOPIC, protocol.encode(msg))
        except Exception as exc:  # hints are best effort; the chain is the truth
            self.log.warning("could not publish %s: %s", type(msg).__name__, exc)
        self._poke(chain=True)
