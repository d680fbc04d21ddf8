"""The train stage: one round of local DP-SGD on this hospital's data (:mod:`node.learning`).

:class:`LocalTrainer` trains the peer's model from the current global parameters with the
round's training settings (:func:`node.learning.training.round_train_config`), charges the
privacy ledger, and reports the time it took to the round's waits (:mod:`node.peer.deadlines`:
a peer that trains slower waits longer for the others). It also releases the row count the
hospital publishes (Ñ, :meth:`LocalTrainer.public_count`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import trio

from node.consensus.update import ModelUpdate
from node.learning.training import round_train_config, train_local

if TYPE_CHECKING:
    import torch

    from node.data.samples import LabelledData
    from node.learning.privacy import PrivacyLedger
    from node.peer.core import PeerCore

__all__ = ["LocalTrainer"]


class LocalTrainer:
    """Trains the peer's ``model()`` on ``data()`` (the standardized data, None before the
    set-up) from ``params()`` (the current global parameters), all read at each round."""

    def __init__(
        self,
        core: PeerCore,
        raw_data: LabelledData,
        privacy: PrivacyLedger,
        *,
        model: Callable[[], torch.nn.Module],
        data: Callable[[], LabelledData | None],
        params: Callable[[], np.ndarray],
    ) -> None:
        self.core, self.address, self.ledger = core, core.address, core.ledger
        self.waits, self.log = core.waits, core.log
        self.raw_data = raw_data
        self.privacy = privacy
        self.model = model
        self.data = data
        self.params = params

    def public_count(self) -> int:
        """The row count this hospital publishes and weighs: Ñ, released once per campaign under
        the privacy ledger and capped by the cohort declared at admission (N itself never
        leaves the node; :meth:`node.learning.privacy.PrivacyLedger.release_count`)."""
        return self.privacy.release_count(
            len(self.raw_data), ceiling=self.ledger.cohort_of(self.address) or None
        )

    async def train(self, round_: int) -> ModelUpdate:
        """This peer's update for ``round_`` (its delta, sample count and epsilon spent)."""
        if self.privacy.config.enabled:
            self.public_count()  # released under the cohort ceiling before train_local reuses it
        data = self.data()
        if data is None:  # a programming error: the set-up comes before the first round
            raise RuntimeError("no training data: agree on the standardizer before the rounds")
        cfg = round_train_config(self.core.settings.train, round_)
        started = time.perf_counter()
        result = await trio.to_thread.run_sync(
            train_local, self.model(), self.params(), data, self.privacy, cfg
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
