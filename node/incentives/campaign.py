"""The arithmetic side of the incentive simulator (:mod:`node.incentives.simulate`): the global
model, each hospital's update for a round (trained, or what its free-rider or poisoner role
sends instead: Lin et al. 2019's zero and stale updates, copies disguised with noise as in
Fraboni et al. 2021, the model attacks of :mod:`node.adversary.attacks`), the free-rider screen
as a live peer runs it, and the commitment hashes."""

from __future__ import annotations

import hashlib

import numpy as np

from node.adversary.attacks import MODEL_ATTACKS
from node.consensus.freeriding import screen_free_riders
from node.learning.models import build_model, flat_parameters
from node.learning.privacy import DPConfig, PrivacyLedger
from node.learning.training import TrainConfig, derive_seed, train_local

from .cohort import Cohort, SimHospital
from .scenario import Scenario
from .schemes import cosine_similarity

__all__ = ["Campaign", "commitment_hash"]


def commitment_hash(label: bytes, vector: np.ndarray) -> bytes:
    """SHA-256 of ``label`` and ``vector`` as little-endian float32: what the simulator commits."""
    return hashlib.sha256(label + np.ascontiguousarray(vector, dtype="<f4").tobytes()).digest()


class Campaign:
    """The arithmetic side: the global model, the hospitals' updates and the round games."""

    def __init__(self, scenario: Scenario, cohort: Cohort) -> None:
        self.scenario = scenario
        self.cohort = cohort
        n_features = cohort.validation.n_features
        self.model = build_model(scenario.model, n_features, seed=scenario.seed)
        self.eval_model = build_model(scenario.model, n_features, seed=scenario.seed)
        self.params = flat_parameters(self.model)
        self.last_step = np.zeros_like(self.params)
        self.revealed: list[
            np.ndarray
        ] = []  # the last finished round's honest updates, seen by everyone
        self.accepted: dict[str, np.ndarray] = {}  # the last finalized round's accepted updates
        dp = DPConfig(
            enabled=False,
            steps_per_epoch=1,
            local_epochs=scenario.local_epochs,
            rounds=scenario.rounds,
        )
        self.ledgers = {h.name: PrivacyLedger(dp, warn_if_off=False) for h in cohort.hospitals}
        self.rng = np.random.default_rng(scenario.seed + 1)
        self.order_rng = np.random.default_rng([scenario.seed, 2])  # commit orders
        self.noise_rng = np.random.default_rng([scenario.seed, 3])  # free-riders' disguises

    def commit_order(self, players: list[SimHospital]) -> list[int]:
        """Indices into ``players`` in commit order: the trainers in a random order, then the
        free-riders (in the given order), who wait for the updates they copy."""
        trainers = [i for i, h in enumerate(players) if h.role != "free-rider"]
        riders = [i for i, h in enumerate(players) if h.role == "free-rider"]
        return [trainers[j] for j in self.order_rng.permutation(len(trainers))] + riders

    def screen(
        self,
        stack: np.ndarray,
        order: list[int],
        players: list[SimHospital],
        previous: bool = True,
        **kw: float,
    ) -> dict[int, str]:
        """The free-rider screen as a live peer runs it: ``stack``'s rows in commit ``order``,
        against the previous global step and (``previous``) the previous round's accepted
        updates of the other players; flagged rows (indices into ``stack``) -> reason."""
        in_order = screen_free_riders(
            [stack[i] for i in order],
            self.last_step,
            senders=[players[i].name for i in order],
            earlier=self.accepted if previous else None,
            **kw,
        )
        return {order[j]: reason for j, reason in in_order.items()}

    def advance(self, step: np.ndarray, accepted: dict[str, np.ndarray]) -> None:
        """Apply a finalized round: its ``step`` and the ``accepted`` updates (name -> row)."""
        self.params = (self.params + step).astype(np.float32)
        self.last_step = step.astype(np.float32)
        self.accepted = accepted

    def _free_ride(
        self, h: SimHospital, reference: np.ndarray, honest: list[np.ndarray]
    ) -> np.ndarray:
        """What a free-rider sends: Lin et al. (2019)'s zero or stale update, a copy of the most
        central honest update it has seen (of this round, or under ``commit_before_reveal`` of
        the previous one), or a random direction at the median honest norm; stale and copy
        disguised with Gaussian noise of ``free_ride_noise`` x the source's norm (Fraboni et
        al., 2021)."""
        how = h.group.free_ride
        if how == "copy" and self.scenario.commit_before_reveal:
            honest = self.revealed
        if how == "zero":
            return np.zeros_like(self.params)
        if how == "random":
            direction = self.noise_rng.normal(size=self.params.size)
            norm = float(np.median([np.linalg.norm(u) for u in honest])) if honest else 0.0
            return (direction * norm / np.linalg.norm(direction)).astype(np.float32)
        if how == "copy" and honest:
            mean = np.mean(honest, axis=0)
            source = max(honest, key=lambda u: cosine_similarity(u, mean))
        else:  # stale, or nothing to copy yet
            source = self.last_step
        noise = self.noise_rng.normal(size=self.params.size)
        scale = (
            h.group.free_ride_noise * float(np.linalg.norm(source)) / float(np.linalg.norm(noise))
        )
        return (source + scale * noise).astype(np.float32)

    def updates(self, round_: int, players: list[SimHospital]) -> np.ndarray:
        honest: dict[str, np.ndarray] = {}
        riding = {h.name for h in players if _rides(h, round_)}
        for h in players:
            if h.name not in riding:  # a poisoner trains too, then sends its attack instead
                cfg = TrainConfig(
                    self.scenario.learning_rate,
                    seed=derive_seed(self.scenario.seed, round_),
                    device="cpu",
                )
                honest[h.name] = train_local(
                    self.model, self.params, h.data, self.ledgers[h.name], cfg
                ).delta
        honest_rows = [honest[h.name] for h in players if h.role == "honest"]
        reference = np.stack(honest_rows or [self.last_step])
        rows = []
        for h in players:
            if h.name in riding:
                rows.append(self._free_ride(h, reference, honest_rows))
            elif h.role == "poisoner":
                attack = MODEL_ATTACKS[h.group.attack]
                rows.append(attack(reference, 1)[0])
            else:
                rows.append(honest[h.name])
        self.revealed = honest_rows  # revealed once the round's commitments are fixed
        return np.stack(rows).astype(np.float32)


def _rides(h: SimHospital, round_: int) -> bool:
    """A free-rider free-rides from its group's ``free_ride_from`` round; before it, it trains."""
    return h.role == "free-rider" and round_ >= h.group.free_ride_from
