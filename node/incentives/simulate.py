"""``medmesh incentives simulate``: a federated campaign of simulated hospitals in one process,
each round valued by every compared scheme and paid through the real contracts.

Per round: hospitals that do not drop out train locally (plain SGD: the simulation is about
incentives, not privacy) or misbehave as their role says, and commit in a seeded random order,
free-riders last (a copier must see what it copies); with ``commit_before_reveal`` (the live
rule, :mod:`node.peer.reveal`) no update of the round is seen before every commitment is fixed, so a
copier copies the previous round's update; zero, stale and duplicate updates are
rejected in that commit order (:mod:`node.consensus.freeriding`, as the live peer does); the
consortium's rule aggregates the rest in address order and its selection is the accepted set;
the round is committed, the rejections recorded, and the round attested and finalized on the
RoundLedger; the round mints its credits (:func:`node.incentives.schemes.round_mint`: by
default in value units, the budget per unit of metric gain over the best metric so far);
GTG-Shapley, leave-one-out and (for small rounds) exact Shapley values are computed on the
round's game, the step the rule actually applied (:mod:`node.incentives.utility`), and the
Shapley scheme pays the exact values whenever they were computed; with ``novelty`` (the
default) leave-one-out and Shapley pay what each update adds over a replay of the previous
round's accepted updates (:mod:`node.incentives.novelty`); each scheme splits the
round's minted credits, and its IncentiveDistributor mints them (sent by the admin, or by a
member quorum with ``award_by = "quorum"``). At the end the balances read back from each
scheme's token must equal the simulator's own sums.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from node.adversary.attacks import MODEL_ATTACKS
from node.consensus.freeriding import screen_free_riders
from node.consensus.rules import outcome, rule_class
from node.learning.models import build_model, flat_parameters
from node.learning.privacy import DPConfig, PrivacyLedger
from node.learning.training import TrainConfig, derive_seed, train_local

from .cohort import Cohort, SimHospital, build_cohort
from .novelty import novel_loo, novel_shapley
from .scenario import Scenario
from .schemes import (
    SCHEMES,
    RoundView,
    allocate,
    cosine_similarity,
    penalties,
    reputation_update,
    round_mint,
)
from .shapley import CachedGame, exact_shapley, gtg_shapley
from .utility import RoundGame

__all__ = ["CREDIT_UNIT", "Campaign", "RoundRecord", "SimulationResult", "simulate"]

#: Smallest units of one credit (the token has 18 decimals).
CREDIT_UNIT = 10**18


@dataclass
class RoundRecord:
    """One round: who took part, what was accepted, every value computed and every payment."""

    round: int
    chain_round: int
    participants: list[str]
    accepted: list[str]
    finalized: bool
    metric_before: float
    metric_after: float
    shapley_gtg: dict[str, float] = field(default_factory=dict)
    shapley_exact: dict[str, float] | None = None
    leave_one_out: dict[str, float] = field(default_factory=dict)
    reputation: dict[str, float] = field(default_factory=dict)
    # what the leave-one-out and Shapley schemes pay by, with ``novelty`` (node/incentives/novelty.py)
    novel_loo: dict[str, float] | None = None
    novel_shapley: dict[str, float] | None = None
    utility_evaluations: int = 0
    minted: int = 0  # credits (smallest units) the round mints, for each scheme to split
    rejected: dict[str, str] = field(
        default_factory=dict
    )  # hospital -> reason (free-rider screen, robust rule)
    commit_order: list[str] = field(default_factory=list)
    credits: dict[str, dict[str, int]] = field(default_factory=dict)  # scheme -> hospital -> units
    burned: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class SimulationResult:
    scenario: Scenario
    hospitals: list[dict[str, Any]]
    rounds: list[RoundRecord]
    computed: dict[str, dict[str, int]]  # scheme -> hospital -> balance the simulator expects
    on_chain: dict[str, dict[str, int]]  # scheme -> hospital -> balance read from the token
    chain: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": asdict(self.scenario),
            "hospitals": self.hospitals,
            "rounds": [asdict(r) for r in self.rounds],
            "computed": self.computed,
            "on_chain": self.on_chain,
            "chain": self.chain,
        }


def _hash(label: bytes, vector: np.ndarray) -> bytes:
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


def _round_values(
    game: RoundGame, scenario: Scenario, seed: int, previous: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, dict[str, np.ndarray], int]:
    """(GTG-Shapley, exact Shapley or None, leave-one-out gains, novelty values by name,
    utility evaluations). ``previous``: the previous round's accepted updates, the free
    substitutes of :mod:`node.incentives.novelty` (used with ``scenario.novelty``)."""
    n = game.n
    cached = CachedGame(game, n)
    s = scenario.shapley
    gtg = gtg_shapley(
        cached,
        n,
        max_permutations=s.max_permutations or None,
        round_tolerance=s.round_tolerance,
        within_tolerance=s.within_tolerance,
        convergence=s.convergence,
        seed=seed,
    )
    evaluations = cached.evaluations
    full = (1 << n) - 1
    loo = np.array([cached(full) - cached(full & ~(1 << i)) for i in range(n)])
    exact = exact_shapley(cached, n) if n <= s.exact_max else None
    novel = {}
    if scenario.novelty:
        novel["loo"] = novel_loo(game, cached, loo, previous)
        if exact is not None and n <= s.novelty_max:
            novel["shapley"] = novel_shapley(game, cached, exact, previous)
    return gtg, exact, loo, novel, evaluations


def _cohorts(hospitals, declared: bool) -> dict[str, int]:
    """The cohort each site declares at registration. With ``declared`` the admission endorsed
    its true count, so the chain refuses any larger claim; without it the consortium endorsed
    whatever the site declared, and a site that lies about its samples declared its claim too."""
    return {h.name: int(h.samples if declared else max(h.samples, h.claimed)) for h in hospitals}


def simulate(
    scenario: Scenario, *, rpc: str | None = None, w3: Any = None, progress: bool = True
) -> SimulationResult:
    """Run ``scenario`` on a fresh embedded chain, the node at ``rpc``, or the connected ``w3``;
    see the module docstring."""
    from tqdm import tqdm

    from ledger import connect

    from .consortium import SimulatedConsortium

    torch.manual_seed(scenario.seed)
    cohort = build_cohort(scenario)
    hospitals = list(cohort.hospitals)
    schemes = list(scenario.schemes)
    budget = scenario.budget_per_round * CREDIT_UNIT
    penalty = scenario.penalty * CREDIT_UNIT
    bar = tqdm(
        total=len(hospitals) + len(schemes) + scenario.rounds,
        desc="incentives",
        unit="step",
        disable=not progress,
        leave=False,
    )
    if w3 is None:
        w3 = connect(rpc)
    elif rpc is not None:
        raise ValueError("simulate: give rpc or w3, not both")
    chain = SimulatedConsortium(
        w3,
        [h.name for h in hospitals],
        schemes,
        budget,
        seed=scenario.seed,
        cohorts=_cohorts(hospitals, scenario.declared_cohorts),
        step=lambda: bar.update(1),
    )
    # canonical order: ascending registry address, as every peer aggregates
    by_address = sorted(hospitals, key=lambda h: int(chain.address(h.name), 16))
    campaign = Campaign(scenario, cohort)
    reputation = {h.name: 0.0 for h in hospitals}
    computed = {s: {h.name: 0 for h in hospitals} for s in schemes}
    records: list[RoundRecord] = []
    best: float | None = None  # the best validation metric so far (value minting's high-water mark)
    for t in range(1, scenario.rounds + 1):
        players = [h for h in by_address if campaign.rng.random() >= h.group.dropout]
        if not players:
            players = [by_address[0]]
        names = [h.name for h in players]
        stack = campaign.updates(t, players)
        claims = [
            min(h.claimed, h.samples) if scenario.declared_cohorts else h.claimed for h in players
        ]
        samples = np.array(claims, dtype=np.float64)
        order = campaign.commit_order(players)
        flags = {}
        if scenario.free_rider_screen:  # in commit order: of two copies, the later is the copier
            flags = campaign.screen(
                stack,
                order,
                players,
                threshold=scenario.similarity_threshold,
                spread_fraction=scenario.spread_fraction,
            )
        kept = [i for i in range(len(names)) if i not in flags]  # what reaches the robust rule
        enough = len(kept) >= rule_class(scenario.rule).min_updates(scenario.f)
        moving = np.array(
            [enough and i in kept for i in range(len(names))]
        )  # too few: the model stays
        game = RoundGame(
            campaign.eval_model,
            campaign.params,
            stack,
            samples,
            cohort.validation,
            scenario.metric,
            rule=scenario.rule,
            f=scenario.f,
            kept=moving,
        )
        before = game.value_of(campaign.params)
        out = (
            outcome(scenario.rule, stack[kept], [float(samples[i]) for i in kept], f=scenario.f)
            if enough
            else None
        )
        keep = [kept[j] for j in out.accepted] if out is not None else []
        step = out.params if out is not None else np.zeros_like(campaign.params)
        commits = {
            n: (_hash(b"medmesh/update/v1", stack[i]), int(samples[i])) for i, n in enumerate(names)
        }
        accepted = [names[i] for i in keep]
        rejected = {names[i]: reason for i, reason in flags.items()}
        rejected.update({names[i]: "robust-rule" for i in kept if enough and i not in keep})
        chain_round = chain.run_round(
            commits, accepted, _hash(b"medmesh/params/v1", campaign.params + step), rejected
        )
        record = RoundRecord(
            t,
            chain_round,
            names,
            accepted,
            chain.finalized(chain_round),
            before,
            before,
            rejected=rejected,
            commit_order=[names[i] for i in order],
        )
        records.append(record)
        if not record.finalized:  # no credits for a failed round; the model stays where it was
            campaign.accepted = {}  # and no round's accepted updates are the previous round's
            bar.update(1)
            continue
        previous = list(campaign.accepted.values())  # the free substitutes (novelty)
        campaign.advance(step, {names[i]: stack[i] for i in keep})
        record.metric_after = game.value_of(campaign.params)
        best = before if best is None else best
        record.minted = round_mint(
            budget,
            record.metric_after - best,
            mint=scenario.mint,
            unit=scenario.value_unit,
        )
        best = max(best, record.metric_after)
        gtg, exact, loo, novel, record.utility_evaluations = _round_values(
            game, scenario, scenario.seed * 7919 + t, previous
        )
        accepted_mask = np.array([n in accepted for n in names])
        similarity = np.array([cosine_similarity(row, step) for row in stack])
        updated = reputation_update(
            np.array([reputation[n] for n in names]),
            similarity,
            accepted_mask,
            alpha=scenario.reputation_alpha,
            slash=scenario.reputation_slash,
        )
        reputation.update(zip(names, (float(r) for r in updated), strict=False))
        record.shapley_gtg = dict(zip(names, map(float, gtg), strict=False))
        record.shapley_exact = (
            None if exact is None else dict(zip(names, map(float, exact), strict=False))
        )
        record.leave_one_out = dict(zip(names, map(float, loo), strict=False))
        if "loo" in novel:
            record.novel_loo = dict(zip(names, map(float, novel["loo"]), strict=False))
        if "shapley" in novel:
            record.novel_shapley = dict(zip(names, map(float, novel["shapley"]), strict=False))
        record.reputation = dict(reputation)
        declared = (
            np.array([h.samples for h in players], dtype=np.float64)
            if scenario.declared_cohorts
            else None
        )
        view = RoundView(
            t,
            tuple(names),
            samples,
            accepted_mask,
            novel.get("shapley", gtg if exact is None else exact),
            novel.get("loo", loo),
            updated,
            declared,
        )
        for scheme in schemes:
            weights = dict(zip(names, SCHEMES[scheme](view), strict=False))
            grants = {n: v for n, v in allocate(record.minted, weights).items() if v > 0}
            # the penalty is set against a full round's mint, and scales with the round's mint
            burns = (
                penalties(view, penalty * record.minted // budget) if scheme == "reputation" else {}
            )
            burns = {n: min(p, computed[scheme][n]) for n, p in burns.items()}
            burns = {n: p for n, p in burns.items() if p > 0}
            if grants or burns:
                endorsers = (
                    None
                    if scenario.award_by == "admin"
                    else names + [h.name for h in by_address if h.name not in names]
                )
                receipt = chain.award(scheme, chain_round, grants, burns, endorsers)
                _check_receipt(receipt, chain, grants, burns)
            for n, v in grants.items():
                computed[scheme][n] += v
            for n, v in burns.items():
                computed[scheme][n] -= v
            record.credits[scheme] = grants
            record.burned[scheme] = burns
        bar.update(1)
    bar.close()
    on_chain = {s: chain.balances(s) for s in schemes}
    info = {
        "rpc": rpc or getattr(w3.provider, "endpoint_uri", None) or "embedded",
        "chain_id": w3.eth.chain_id,
        "deployment": chain.deployment.to_dict(),
        "addresses": chain.addresses(),
        "accounts": {h.name: chain.address(h.name) for h in hospitals},
        "award_gas": {s: d.gas_used["award"] for s, d in chain.distributors.items()},
    }
    roster = [
        {
            "name": h.name,
            "role": h.role,
            "profile": _profile(h.group),
            "samples": h.samples,
            "claimed_samples": h.claimed,
            "label_noise": h.group.label_noise,
            "scanner_noise": h.group.scanner_noise,
            "dropout": h.group.dropout,
            "behaviour": h.group.free_ride
            if h.role == "free-rider"
            else h.group.attack
            if h.role == "poisoner"
            else "trains",
        }
        for h in hospitals
    ]
    return SimulationResult(scenario, roster, records, computed, on_chain, info)


def _profile(group: Any) -> str:
    """A short label for the tables: the role, or for an honest site what is special about it."""
    if group.role != "honest":
        return str(group.role)
    tags = [
        tag
        for tag, on in (
            ("label-noise", group.label_noise > 0),
            ("legacy-scanner", group.scanner_noise > 0),
            ("dropout", group.dropout > 0),
        )
        if on
    ]
    return "+".join(tags) or "honest"


def _check_receipt(receipt: Any, chain: Any, grants: dict[str, int], burns: dict[str, int]) -> None:
    minted = {chain.address(n): v for n, v in grants.items()}
    burned = {chain.address(n): v for n, v in burns.items()}
    if receipt.minted != minted or receipt.burned != burned:
        raise RuntimeError(
            f"round {receipt.round} {receipt.scheme}: the chain minted {receipt.minted} "
            f"and burned {receipt.burned}, the simulator expected {minted} and {burned}"
        )
