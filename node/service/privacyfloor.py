"""The chain's record of this node's spent ε: a floor its privacy ledger may never be below.

Every commit puts the node's cumulative ε (in micro-units) on chain. A lost or older
``privacy.json`` would restart the accountant at 0 and spend the budget a second time
(issue 17.2), so at start the node reads its own highest committed ε and refuses to run
below it (:func:`check_floor`).

An operator whose ``privacy.json`` is lost for good may rebuild it from the chain
(``medmesh node run --restore-privacy-from-chain``, :func:`restore_from_chain`): one round of
``steps_per_round`` DP-SGD steps at the campaign's calibrated noise for every round this node
committed in. That is a lower bound of what was spent: a round trained but never committed
(its commit reverted) left nothing on chain. The rebuilt ledger must reach the chain's
highest ε, or the config no longer matches what was committed and the node refuses. The row
count the node released (issue 15 §2, :meth:`node.learning.privacy.PrivacyLedger.release_count`) is
read back from its commits' ``samples`` and charged once: drawing a new one would publish a
second noisy view of N.

The chain records ε only, not δ: δ is the ledger's (and the config's) campaign δ.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import LedgerClient
from node.errors import MedmeshError
from node.learning.privacy import PrivacyLedger

__all__ = [
    "ChainSpend",
    "PrivacyFloorError",
    "committed_spend",
    "check_floor",
    "restore_from_chain",
]

#: ε is committed in micro-units, rounded to nearest: half a unit either way is the same spend.
TOLERANCE = 1e-6


class PrivacyFloorError(MedmeshError, RuntimeError):
    """The local privacy ledger is below what the chain records; one line."""


@dataclass(frozen=True)
class ChainSpend:
    epsilon: float  # the highest ε this node committed
    round: int  # the round of that commit (0: none)
    commits: int  # rounds this node committed in
    samples: int = 0  # the sample count of that commit (the released Ñ; 0: none)


def committed_spend(client: LedgerClient, address: str) -> ChainSpend:
    """This node's commitments on chain: highest ε, its round, and how many rounds."""
    best, at, count, samples = 0.0, 0, 0, 0
    for round_ in range(1, client.current_round() + 1):
        c = client.commitment(round_, address)
        if c is None:
            continue
        count += 1
        if c.epsilon >= best:
            best, at, samples = c.epsilon, round_, c.samples
    return ChainSpend(best, at, count, samples)


def check_floor(ledger: PrivacyLedger, spend: ChainSpend) -> None:
    """Raise :class:`PrivacyFloorError` if the ledger says less than the chain."""
    local = ledger.spent()
    if local + TOLERANCE < spend.epsilon:
        where = ledger.path if ledger.path is not None else "the privacy ledger"
        raise PrivacyFloorError(
            f"the chain records epsilon {spend.epsilon:.6f} committed by this node in round {spend.round}, "
            f"but {where} holds {local:.6f}: restore privacy.json from a backup, or run once with "
            f"--restore-privacy-from-chain to rebuild it from the chain's {spend.commits} commitments"
        )


def restore_from_chain(ledger: PrivacyLedger, spend: ChainSpend) -> float:
    """Rebuild an empty ledger from ``spend`` (see the module docstring); the rebuilt ε."""
    if ledger.history:
        raise PrivacyFloorError(
            "--restore-privacy-from-chain rebuilds a lost privacy.json only; "
            f"{ledger.path} exists and holds epsilon {ledger.spent():.6f}"
        )
    cfg = ledger.config
    if spend.commits and cfg.enabled:
        ledger.accountant.history = [
            (cfg.noise_multiplier, cfg.sample_rate, spend.commits * cfg.steps_per_round)
        ]
        if cfg.count_events and spend.samples:
            ledger.adopt_released_count(spend.samples)
    rebuilt = ledger.spent()
    if rebuilt + TOLERANCE < spend.epsilon:
        ledger.accountant.history = []
        raise PrivacyFloorError(
            f"rebuilding from {spend.commits} commitments gives epsilon {rebuilt:.6f}, below the "
            f"{spend.epsilon:.6f} committed in round {spend.round}: the [privacy] config differs from the "
            f"one that was used; restore privacy.json from a backup"
        )
    ledger.save()
    return rebuilt
