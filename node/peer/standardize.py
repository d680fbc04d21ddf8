"""The set-up before the first round: the z-scorer every member applies (:mod:`node.data.scaling`).

:class:`FeatureSetup` listens on the set-up topic for the other members' feature summaries
(each checked, a bad one refused with a warning naming its sender; a second one from the same
member ignored) and combines them: by per-feature medians of summaries shared in the clear, or
from a secure sum of masked summaries (:mod:`node.peer.setupsum`) under public feature bounds.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import trio

from node.consensus import protocol
from node.data import scaling
from node.data.samples import FeatureStats, ImageData, LabelledData, Standardizer
from node.learning.models import model_input
from node.peer import setupsum

if TYPE_CHECKING:
    from node.peer.core import PeerCore
    from node.peer.identity import NodeIdentity

__all__ = ["FeatureSetup"]


class FeatureSetup:
    """The feature summaries shared on the set-up topic, and the standardizer agreed from them.
    ``public_count()`` is the row count this hospital publishes (Ñ)."""

    def __init__(
        self,
        core: PeerCore,
        identity: NodeIdentity,
        raw_data: LabelledData,
        public_count: Callable[[], int],
    ) -> None:
        self.ledger, self.host, self.directory = core.ledger, core.host, core.directory
        self.core, self.log = core, core.log
        self.identity = identity
        self.address = identity.address
        self.raw_data = raw_data
        self.public_count = public_count
        self._stats: dict[str, FeatureStats] = {}
        self._stats_refused: dict[str, str] = {}  # sender -> why its feature sums were refused
        self._masked: dict[str, np.ndarray] = {}  # sender -> its masked set-up sum (setupsum)
        self._stats_changed = trio.Event()

    async def listen(self, subscription: AsyncIterable[Any]) -> None:
        """File each member's feature summary from the set-up topic until cancelled."""
        async for msg in subscription:
            try:
                shared = protocol.decode(msg.data)
                ident = self.directory.identity_of(msg.from_peer)
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

    async def agree(self, timeout: float) -> tuple[LabelledData, Standardizer | None]:
        """The data as the model sees it and the z-scorer that made it (None for images).

        With public ``feature_bounds`` nothing is shared: the scaling follows from the bounds.
        Otherwise each hospital shares its feature sums; each summary is checked, a bad one is
        refused with a warning naming its sender (it neither poisons the scaling nor stalls the
        set-up), and the valid ones are combined by per-feature medians. Images need none: their
        loaders already scale pixels to [0, 1]; a feature model (``imaging-features``) gets them
        mapped once to its fixed features."""
        if isinstance(self.raw_data, ImageData):
            return model_input(self.core.settings.model, self.raw_data), None
        features = self.raw_data.x[0].size
        bounds = self.core.settings.feature_bounds
        if bounds is not None:
            if bounds.low.size != features:
                raise ValueError(
                    f"feature bounds for {bounds.low.size} features, the data has {features}"
                )
            standardizer = scaling.from_bounds(bounds)
            if self.core.settings.scaling == "secure":
                standardizer = await self._secure_standardizer(bounds, timeout)
            return standardizer.apply(self.raw_data), standardizer
        mine = FeatureStats.of(self.raw_data).at_count(self.public_count())
        scaling.check_stats(mine, features)
        self._stats[self.address] = mine
        others = self.directory.others()
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
        members = self.directory.active_members()
        sites = [self._stats[i.address] for i in members if i.address in self._stats]
        standardizer = scaling.robust_combine(sites)
        self.log.warning(
            "feature sums of %d sites were shared in the clear, outside the DP budget (no public "
            "feature bounds); %d refused",
            len(sites),
            len(self._stats_refused),
        )
        return standardizer.apply(self.raw_data), standardizer

    async def _secure_standardizer(
        self, bounds: scaling.FeatureBounds, timeout: float
    ) -> Standardizer:
        """The pooled z-scorer from a secure sum (:mod:`node.peer.setupsum`); the public bounds' scaling
        if a member's input is missing or the total is implausible (warned)."""
        members = self.directory.active_members()
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
        others = self.directory.others()
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
