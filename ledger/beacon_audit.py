"""The audit of the round beacon and of the ckks role draws (issue 15, section 3).

From the RoundBeacon's events alone, per round: each ``SecretRevealed`` secret must match its
member's ``SecretCommitted`` commitment; the beacon value recomputed from the reveals
(:func:`ledger.beacon.value_from_reveals`) must equal what ``RoundBeacon.beacon`` reports.
For a round with ckks commitments (mode :data:`CKKS_MODE`), the beacon must have had a quorum
of reveals (no ckks draw without one), the audit redraws the key holder and the aggregator
from the recomputed value among the revealers (:func:`ledger.randomness.draw_pair`, the rule
the peers run; with a committee, among its seats that revealed: :func:`check_ckks_roles`, run
after the committee's audit) and puts them in the report (``round["ckks_roles"]``); a finalized ckks round
whose drawn key holder committed must have it in its accepted set (with FedAvg, the key holder's
own update is always in the sum it decrypts) or among the attesters of the winning aggregate
(with a robust rule the rule may leave the key holder's update out).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from .beacon import beacon_info, secret_commitment, value_from_reveals
from .deploy import Deployment
from .randomness import draw_pair, mix_seed

__all__ = ["CKKS_MODE", "beacon_rounds", "check_beacon", "check_ckks_roles"]

#: The protection-mode code the node software commits for ckks updates (``node.protection``).
CKKS_MODE = 3


def beacon_rounds(events: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Per round: ``commitments`` and ``reveals`` (account -> 0x hex) and ``withheld`` accounts."""
    rounds: dict[int, dict[str, Any]] = defaultdict(
        lambda: {"commitments": {}, "reveals": {}, "withheld": []}
    )
    for ev in events:
        if ev["contract"] != "RoundBeacon":
            continue
        a, kind = ev["args"], ev["event"]
        b = rounds[a["round"]]
        if kind == "SecretCommitted":
            b["commitments"][a["account"]] = a["commitment"]
        elif kind == "SecretRevealed":
            b["reveals"][a["account"]] = a["secret"]
        elif kind == "RevealWithheld":
            b["withheld"].append(a["account"])
    return dict(rounds)


def check_beacon(
    viewer: Any,
    deployment: Deployment,
    events: list[dict[str, Any]],
    rounds: list[dict[str, Any]],
    quorum: tuple[int, int],
    check: Any,
) -> None:
    """Run the checks above over ``rounds`` (the audit's history), adding ``beacon`` to each
    round (the ckks roles: :func:`check_ckks_roles`)."""
    beacons = beacon_rounds(events)
    address = deployment.addresses["RoundBeacon"]
    for r in rounds:
        n = r["round"]
        b = beacons.get(n, {"commitments": {}, "reveals": {}, "withheld": []})
        ckks = any(c["mode"] == CKKS_MODE for c in r["commits"])
        reveals = {a: bytes.fromhex(s[2:]) for a, s in b["reveals"].items()}
        needed = r["member_count"] * quorum[0] // quorum[1] + 1
        value = (
            value_from_reveals(deployment.chain_id, address, n, reveals)
            if len(reveals) >= needed
            else None
        )
        r["beacon"] = {
            "commits": len(b["commitments"]),
            "reveals": len(reveals),
            "needed": needed,
            "withheld": b["withheld"],
            "value": None if value is None else "0x" + value.hex(),
        }
        if not b["commitments"] and not ckks:
            continue  # a round of a mode that draws nothing from the beacon
        wrong = [
            a
            for a, s in reveals.items()
            if "0x" + secret_commitment(s, a, n, address).hex() != b["commitments"].get(a)
        ]
        check(
            f"round {n}: every beacon reveal matches its commitment",
            not wrong,
            f"mismatched: {wrong}" if wrong else "",
        )
        if value is not None:
            onchain = beacon_info(viewer, n).value
            check(
                f"round {n}: the beacon value recomputed from {len(reveals)} reveals matches RoundBeacon.beacon()",
                onchain == value,
                f"chain says {onchain.hex() if onchain else None}, reveals give {value.hex()}",
            )
        if not ckks:
            continue
        check(
            f"round {n}: its ckks roles come from a beacon with a quorum of reveals",
            value is not None,
            f"{len(reveals)} of {r['member_count']} members revealed, {needed} needed",
        )


def check_ckks_roles(
    deployment: Deployment, events: list[dict[str, Any]], rounds: list[dict[str, Any]], check: Any
) -> None:
    """Redraw each ckks round's (key holder, aggregator) as the peers draw it: among the
    revealers, or with a committee among its seats that revealed (``round["committee"]``, from
    :func:`ledger.committee_audit.check_committee`, run first); add ``ckks_roles`` to the round."""
    beacons = beacon_rounds(events)
    for r in rounds:
        n, value = r["round"], (r.get("beacon") or {}).get("value")
        if value is None or not any(c["mode"] == CKKS_MODE for c in r["commits"]):
            continue
        reveals = list(beacons.get(n, {"reveals": {}})["reveals"])
        if "committee" in r:  # a committee round: roles go to seats only (docs/secagg.md)
            seats = {a.lower() for a in r["committee"]["seats"]}
            reveals = [a for a in reveals if a.lower() in seats]
        if len(reveals) < 2:
            continue
        seed = mix_seed(deployment, n, "ckks-roles", bytes.fromhex(value[2:]))
        holder, aggregator = draw_pair(seed, reveals)
        r["ckks_roles"] = {"key_holder": holder, "aggregator": aggregator}
        committed = {c["account"].lower() for c in r["commits"]}
        if r["finalized"] and holder.lower() in committed:
            # with FedAvg its update is always in the sum; with a robust rule (Krum, Multi-Krum over
            # encrypted distances) the rule may leave it out, but it decrypted and voted for the aggregate
            accepted = {a.lower() for a in r["accepted"]}
            voted = {
                x["account"].lower()
                for x in r["attestations"]
                if x.get("vote_key") == r.get("winning_vote_key")
            }
            check(
                f"round {n}: the ckks key holder drawn from the beacon is in the accepted set or voted for it",
                holder.lower() in accepted | voted,
                f"key holder {holder}",
            )
