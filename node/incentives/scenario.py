"""Simulation scenarios, read from TOML: who the hospitals are and how the campaign runs.

A scenario file has top-level settings and one ``[[hospitals]]`` table per group of alike
hospitals (see ``node/incentives/scenarios/*.toml``)::

    rounds = 8
    [[hospitals]]
    count = 2          # two large hospitals
    samples = 120
    [[hospitals]]
    count = 1
    samples = 25
    role = "free-rider"   # or "honest", "poisoner"
    free_ride = "zero"    # or "stale" (the previous global step), "copy" (another site's
                          # update of the round), "random" (a random direction, honest norm)
    free_ride_noise = 0.1 # stale/copy: Gaussian noise of this fraction of the source's norm
    free_ride_from = 2    # trains honestly in round 1, free-rides from round 2 (default 1)
    claimed_samples = 3000  # what the site commits (0 or absent: its true count); with
                            # declared_cohorts (the default) capped at its endorsed cohort

Every problem raises :class:`ScenarioError` with one line naming the file and the key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from node.adversary.attacks import MODEL_ATTACKS
from node.consensus.rules import RULES
from node.errors import MedmeshError
from node.service.config import AggregationSection, DataSection, PrivacySection, TrainingSection

from .schemes import MINTS, SCHEMES
from .utility import METRICS

__all__ = [
    "ROLES",
    "FREE_RIDES",
    "DATASETS",
    "ScenarioError",
    "HospitalGroup",
    "ShapleySettings",
    "Scenario",
    "check_rows",
    "load_scenario",
    "scenario_from_dict",
]

ROLES = ("honest", "free-rider", "poisoner")
FREE_RIDES = ("zero", "stale", "copy", "random")
DATASETS = ("breast-cancer",)
_POISONS = tuple(a for a in MODEL_ATTACKS if a != "free-rider")


class ScenarioError(MedmeshError, ValueError):
    """A scenario cannot be used; the message is one line: ``<file>: <problem>``."""


@dataclass(frozen=True)
class HospitalGroup:
    """``count`` alike hospitals: their size, data quality, behaviour and reliability."""

    count: int = 1
    samples: int = 40
    label_noise: float = 0.0  # fraction of training labels flipped
    scanner_noise: float = 0.0  # legacy-scanner input noise, x the site's own spread
    dropout: float = 0.0  # probability of missing a round
    role: str = "honest"
    free_ride: str = (
        "zero"  # free-riders: "zero", a "stale" replay, a "copy" of another site's update, "random"
    )
    free_ride_noise: float = (
        0.0  # stale/copy: added Gaussian noise, as a fraction of the source's norm
    )
    free_ride_from: int = 1  # free-riders: the first round they free-ride in (they train before it)
    attack: str = "sign-flip"  # poisoners: a key of node.adversary.attacks.MODEL_ATTACKS
    claimed_samples: int = 0  # the count the site commits on chain (0: its true count)

    def check(self) -> None:
        if self.count < 1 or self.samples < 2 or self.free_ride_from < 1:
            raise ValueError("count and free_ride_from must be >= 1 and samples >= 2")
        for name in ("label_noise", "scanner_noise", "dropout"):
            value = getattr(self, name)
            if not 0 <= value <= (10 if name == "scanner_noise" else 1):
                raise ValueError(f"{name} out of range: {value}")
        if self.dropout >= 1:
            raise ValueError("dropout must be < 1")
        if not 0 <= self.free_ride_noise <= 10 or not 0 <= self.claimed_samples < 2**64:
            raise ValueError("free_ride_noise must be in [0, 10] and claimed_samples in [0, 2^64)")
        _choice("role", self.role, ROLES)
        _choice("free_ride", self.free_ride, FREE_RIDES)
        _choice("attack", self.attack, _POISONS)


@dataclass(frozen=True)
class ShapleySettings:
    """GTG-Shapley's knobs (Liu et al., 2022) and the exact reference's size limit."""

    max_permutations: int = 0  # 0: 10 x the round's participants
    round_tolerance: float = 1e-4
    within_tolerance: float = 1e-4
    convergence: float = 0.02
    exact_max: int = 10  # exact Shapley values (2^n coalitions) for rounds of at most this many
    novelty_max: int = 6  # Shapley novelty (n x |P| x 2^(n-1) more coalitions) up to this many

    def check(self) -> None:
        if self.max_permutations < 0 or not 0 <= min(self.exact_max, self.novelty_max):
            raise ValueError("max_permutations, exact_max and novelty_max must be >= 0")
        if max(self.exact_max, self.novelty_max) > 16:
            raise ValueError("exact_max and novelty_max must be at most 16")
        if min(self.round_tolerance, self.within_tolerance, self.convergence) < 0:
            raise ValueError("tolerances must be >= 0")


_A, _P, _T = AggregationSection, PrivacySection, TrainingSection  # keys a node's config also has


@dataclass(frozen=True)
class Scenario:
    """A simulated campaign. The keys a node's config also has (seed, rounds, model, rule, f,
    learning_rate, local_epochs, the number of hospitals) default to the node's own defaults
    (:mod:`node.service.config`)."""

    name: str = "scenario"
    seed: int = _T.seed
    rounds: int = _P.rounds
    dataset: str = "breast-cancer"
    validation_fraction: float = 0.2
    model: str = _T.model
    metric: str = "neg-logloss"  # AUC saturates after a round or two on this data (see README)
    rule: str = _A.rule  # the consortium's aggregation rule (its selection is the accepted set)
    f: int = _A.f  # Byzantine peers the Krum family and Bulyan tolerate
    learning_rate: float = _T.learning_rate
    local_epochs: int = _P.local_epochs
    budget_per_round: int = 100  # credits (whole MMC) per round, per scheme: the most a round mints
    # "value": a round mints budget x its metric gain over the best so far / value_unit (capped at
    # the budget); "pot": the whole budget every round (node/incentives/schemes.py, round_mint)
    mint: str = "value"
    value_unit: float = 1.0
    penalty: int = 10  # credits burned per rejected update in a round minting the whole budget
    # (reputation scheme); a round minting less burns in proportion
    reputation_alpha: float = 0.5
    reputation_slash: float = 0.5
    award_by: str = "admin"  # who sends each award: the consortium "admin", or a member "quorum"
    free_rider_screen: bool = (
        True  # reject zero, stale and duplicate updates (node/consensus/freeriding.py)
    )
    similarity_threshold: float = 0.999  # the screen's cosine threshold
    spread_fraction: float = (
        0.2  # the screen's copy test against the round's spread (0: cosine only)
    )
    # claims capped at each site's cohort, declared at admission and endorsed (the chain refuses a
    # commit above it), as live peers are; false: an opt-in that is GAMEABLE, the consortium
    # endorses any cohort and data-size caps claims only at the round's median claim, which a small
    # site can claim (issue 16: 33.3 % against an honest 27.3 % in the `four` scenario)
    declared_cohorts: bool = True
    # blobs are sent only once every member committed (node/peer/reveal.py): a copier sees earlier rounds only
    commit_before_reveal: bool = True
    # leave-one-out and Shapley pay what an update adds over a replay of the previous round's
    # accepted updates (node/incentives/novelty.py); false: the papers' plain values
    novelty: bool = True
    # leave-one-out novelty's substitutes also include this many noisy replays of each previous
    # update, at the seat's own distance from it, valued at their best + 1 standard deviation
    # (node/incentives/novelty.py); 0: exact replays only
    replay_draws: int = 32
    schemes: tuple[str, ...] = tuple(SCHEMES)
    shapley: ShapleySettings = ShapleySettings()
    hospitals: tuple[HospitalGroup, ...] = field(
        default_factory=lambda: (HospitalGroup(count=DataSection.sites),)
    )

    @property
    def n_hospitals(self) -> int:
        return sum(g.count for g in self.hospitals)

    def check(self) -> None:
        from node.learning.models import MODEL_NAMES

        if self.rounds < 1 or self.local_epochs < 1 or self.learning_rate <= 0:
            raise ValueError("rounds and local_epochs must be >= 1 and learning_rate > 0")
        if not 0 < self.validation_fraction < 0.5:
            raise ValueError(
                f"validation_fraction must be in (0, 0.5), got {self.validation_fraction}"
            )
        if self.budget_per_round < 1 or self.penalty < 0 or self.f < 0:
            raise ValueError("budget_per_round must be >= 1, penalty and f >= 0")
        if not 0 <= self.reputation_alpha < 1 or not 0 <= self.reputation_slash <= 1:
            raise ValueError("reputation_alpha must be in [0, 1) and reputation_slash in [0, 1]")
        if not isinstance(self.free_rider_screen, bool) or not 0 < self.similarity_threshold <= 1:
            raise ValueError(
                "free_rider_screen must be true or false and similarity_threshold in (0, 1]"
            )
        if not isinstance(self.declared_cohorts, bool) or not 0 <= self.spread_fraction < 1:
            raise ValueError("declared_cohorts must be true or false and spread_fraction in [0, 1)")
        if not isinstance(self.commit_before_reveal, bool) or not isinstance(self.novelty, bool):
            raise ValueError("commit_before_reveal and novelty must be true or false")
        if not (self.replay_draws == 0 or 2 <= self.replay_draws <= 1024):
            raise ValueError(f"replay_draws must be 0 or in [2, 1024], got {self.replay_draws}")
        _choice("award_by", self.award_by, ("admin", "quorum"))
        _choice("mint", self.mint, MINTS)
        if not 0 < self.value_unit < float("inf"):
            raise ValueError(f"value_unit must be a finite number > 0, got {self.value_unit}")
        _choice("dataset", self.dataset, DATASETS)
        _choice("model", self.model, tuple(MODEL_NAMES))
        _choice("metric", self.metric, METRICS)
        _choice("rule", self.rule, tuple(RULES))
        if not self.schemes:
            raise ValueError("schemes must name at least one scheme")
        for s in self.schemes:
            _choice("schemes", s, tuple(SCHEMES))
        if not 2 <= self.n_hospitals <= 64:
            raise ValueError(f"a scenario needs 2..64 hospitals, got {self.n_hospitals}")
        self.shapley.check()
        for g in self.hospitals:
            g.check()


def _choice(key: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{key} = {value!r} is not one of {', '.join(allowed)}")


def _build(cls: type, table: Any, where: str) -> Any:
    if not isinstance(table, dict):
        raise ValueError(f"{where} must be a table")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ValueError(f"unknown key {where}{unknown[0]}; known: {', '.join(sorted(known))}")
    kwargs = {}
    for key, value in table.items():
        default = getattr(cls(), key)
        if isinstance(default, bool) or not isinstance(default, (int, float, str, tuple)):
            kwargs[key] = value
        elif isinstance(default, tuple):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{where}{key} must be a list of names")
            kwargs[key] = tuple(value)
        elif (
            isinstance(default, float)
            and isinstance(value, (int, float))
            and not isinstance(value, bool)
        ):
            kwargs[key] = float(value)
        elif type(value) is not type(default):
            raise ValueError(f"{where}{key} must be {type(default).__name__}, got {value!r}")
        else:
            kwargs[key] = value
    return kwargs


def scenario_from_dict(data: dict[str, Any]) -> Scenario:
    data = dict(data)
    groups = data.pop("hospitals", None)
    shapley = data.pop("shapley", {})
    kwargs = _build(Scenario, data, "")
    kwargs["shapley"] = ShapleySettings(**_build(ShapleySettings, shapley, "shapley."))
    if groups is not None:
        if not isinstance(groups, list) or not groups:
            raise ValueError("hospitals must be a non-empty array of tables ([[hospitals]])")
        kwargs["hospitals"] = tuple(
            HospitalGroup(**_build(HospitalGroup, g, f"hospitals[{i}]."))
            for i, g in enumerate(groups)
        )
    scenario = Scenario(**kwargs)
    scenario.check()
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file; a bare name (``default``) picks a shipped scenario."""
    p = Path(path)
    if not p.exists() and p.suffix == "" and (SHIPPED / f"{p.name}.toml").exists():
        p = SHIPPED / f"{p.name}.toml"
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{p}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{p}: not TOML: {exc}") from None
    try:
        scenario = scenario_from_dict(data)
        check_rows(scenario)
        return scenario
    except (TypeError, ValueError) as exc:
        raise ScenarioError(f"{p}: {str(exc).splitlines()[0]}") from None


def check_rows(scenario: Scenario) -> None:
    """The hospitals must fit in the data set's training rows (rows are drawn without replacement)."""
    from node.data.samples import breast_cancer_split

    split = breast_cancer_split(1, seed=scenario.seed, test_fraction=scenario.validation_fraction)
    available = sum(len(d) for d in split.hospitals.values())
    wanted = sum(g.count * g.samples for g in scenario.hospitals)
    if wanted > available:
        raise ValueError(
            f"the hospitals ask for {wanted} rows; {scenario.dataset} has {available} training rows "
            f"(with validation_fraction {scenario.validation_fraction})"
        )


SHIPPED = Path(__file__).resolve().parent / "scenarios"
