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

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from node.consensus.rules import outcome, rule_class

from .campaign import Campaign, commitment_hash
from .cohort import build_cohort
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
        novel["loo"] = novel_loo(
            game, cached, loo, previous, draws=scenario.replay_draws, seed=seed
        )
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
            n: (commitment_hash(b"medmesh/update/v1", stack[i]), int(samples[i]))
            for i, n in enumerate(names)
        }
        accepted = [names[i] for i in keep]
        rejected = {names[i]: reason for i, reason in flags.items()}
        rejected.update({names[i]: "robust-rule" for i in kept if enough and i not in keep})
        chain_round = chain.run_round(
            commits,
            accepted,
            commitment_hash(b"medmesh/params/v1", campaign.params + step),
            rejected,
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
