"""Protection modes: how an update is protected on its way to the other peers, and how the
peers aggregate what they receive. The consortium picks one (``PeerSettings.protection``,
``medmesh demo --protection``); its code is recorded on chain with every commit and a peer
rejects commits made under another mode.

=========  ====  =============================================================  ==============
mode       code  what a peer sees of another peer's update                      rules
=========  ====  =============================================================  ==============
sealed     1     the update itself (sealed for registered peers only)           any
secagg     2     only the sum over all peers (Bonawitz et al. 2017 masking)     fedavg
ckks       3     only the sum, decrypted by the round's key holder (CKKS);      fedavg, krum,
                 with krum / multi-krum also every pair's inner product          multi-krum
=========  ====  =============================================================  ==============

Who learns what under which collusion, for each mode: ``docs/threat-model.md``.
"""

from __future__ import annotations

from node.consensus.rules import rule_class
from node.protection.base import Aggregate, Mailbox, ProtectionMode, Rejected
from node.protection.context import ModeContext

__all__ = [
    "COMMITTEE_MODES",
    "MODE_CODES",
    "check_norm_bound",
    "SUM_ONLY",
    "Aggregate",
    "Mailbox",
    "ModeContext",
    "ProtectionMode",
    "Rejected",
    "check_committee",
    "check_protection",
    "committee_refusal",
    "make_mode",
]

MODE_CODES = {"sealed": 1, "secagg": 2, "ckks": 3}
SUM_ONLY = {"secagg", "ckks"}  # modes that reveal only the sum of the updates
#: modes that run with an aggregation committee (docs/committee.md); ckks with FedAvg only
COMMITTEE_MODES = ("sealed", "secagg", "ckks")


def check_protection(protection: str, rule: str) -> None:
    """Raise ValueError for an unknown mode or a rule the mode cannot serve (a sum-only mode serves
    only a rule that does not need the individual updates)."""
    if protection not in MODE_CODES:
        raise ValueError(
            f"unknown protection mode {protection!r}; choose one of {', '.join(MODE_CODES)}"
        )
    chosen = rule_class(rule)
    if protection == "ckks" and chosen.from_distances:
        return  # the robust variant: selection from encrypted inner products (node.protection.ckks_robust)
    if protection in SUM_ONLY and chosen.needs_individual_updates:
        also = ", or krum / multi-krum" if protection == "ckks" else ""
        raise ValueError(
            f"protection {protection} reveals only the sum of the updates, so it works with "
            f"--rule fedavg (plus norm clipping before masking){also} only, not {rule}: this "
            f"rule needs each individual update (use --protection sealed)"
        )


def committee_refusal(protection: str, rule: str) -> str | None:
    """Why ``protection`` with ``rule`` cannot run with an aggregation committee, in one line;
    None where it can (docs/committee.md, docs/secagg.md)."""
    if protection not in COMMITTEE_MODES:
        return (
            f"a committee runs with --protection {' or '.join(COMMITTEE_MODES)} only "
            f"({protection} aggregates among every hospital; docs/committee.md)"
        )
    if protection == "ckks" and rule_class(rule).from_distances:
        return (
            f"ckks with {rule} does not run with a committee: each member checks its own row of "
            f"the key holder's scalars, and a follower never receives them (use --rule fedavg; "
            f"docs/secagg.md)"
        )
    return None


def check_committee(protection: str, committee: int, members: int, rule: str = "fedavg") -> None:
    """Raise ValueError where a committee of ``committee`` seats (below ``members``) cannot run
    with ``protection`` and ``rule`` (one line naming why, :func:`committee_refusal`)."""
    refusal = committee_refusal(protection, rule) if 0 < committee < members else None
    if refusal is not None:
        raise ValueError(f"--committee {committee}: {refusal}")


def check_norm_bound(protection: str, rule: str) -> None:
    """Raise ValueError where norm bounding (Sun et al. 2019) cannot run: it scales each update by
    its norm, which only sealed mode and ckks with a rule computable from distances see."""
    if protection == "sealed" or (protection == "ckks" and rule_class(rule).from_distances):
        return
    raise ValueError(
        f"norm_bound needs each update's norm: protection sealed, or ckks with krum / multi-krum; "
        f"not {protection} with {rule} (use clip_norm, a fixed bound each member applies itself)"
    )


def make_mode(ctx: ModeContext) -> ProtectionMode:
    """The consortium's mode (``ctx.settings.protection``), seeing the peer through ``ctx``."""
    name = ctx.settings.protection
    check_protection(name, ctx.settings.rule)
    if name == "sealed":
        from node.protection.sealed_mode import SealedMode

        return SealedMode(ctx)
    if name == "secagg":
        from node.protection.secagg_mode import SecAggMode

        return SecAggMode(ctx)
    if rule_class(ctx.settings.rule).from_distances:
        from node.protection.ckks_robust import RobustCkksMode

        return RobustCkksMode(ctx)
    from node.protection.ckks_mode import CkksMode

    return CkksMode(ctx)
