"""The audit of a deployment's IncentiveDistributors: their awards rebuilt from event logs and
re-checked against the RoundLedger's history, the distributors' budgets and their tokens.

An award is one ``CreditsAwarded`` event with the ``CreditAwarded`` and ``ContributorPenalized``
events of the same transaction. The re-checks repeat, from the public record alone, the rules
``contracts/IncentiveDistributor.sol`` enforces (so a distributor running other code, or one
bound to another consortium's RoundLedger, shows up as failures):

- each award's total and recipient count match its grants;
- one award per (round, scheme), sent by the consortium admin, or executed on the endorsement
  of more than the RoundLedger's quorum fraction of the Active members, whose endorsements
  (``AwardEndorsed``) name the hash of exactly this award, recomputed here;
- every grant went to a member of a finalized round's accepted set;
- every penalty hit a member that committed in a finalized round and was left out of it, and
  burned at most the penalty asked;
- a round's awards, all schemes together, stay within ``budgetPerRound`` and equal the
  distributor's own ``awardedInRound``;
- the distributor pays for this deployment's RoundLedger and registry, is its token's only
  minter, and the token's balances and supply equal the awards minus the burns.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak
from web3 import Web3
from web3.exceptions import Web3Exception

from .awards import DistributorClient, distributors, scheme_name
from .compile import compile_contracts
from .deploy import Deployment
from .errors import LedgerError

__all__ = ["AWARD_RULES", "award_digest", "award_history", "award_violations", "check_awards"]

#: Rule key -> the check's wording (each is prefixed with the distributor's key).
AWARD_RULES = {
    "sums": "each award's total and recipients match its grants",
    "once": "one award per (round, scheme), each sent by the admin or endorsed by a member quorum",
    "grants": "every grant went to a member accepted in a finalized round",
    "penalties": "every penalty hit a committer left out of a finalized round, burning at most the penalty",
    "budget": "each round's awards sum within budgetPerRound",
}
_AWARD_EVENTS = (
    "CreditsAwarded",
    "CreditAwarded",
    "ContributorPenalized",
    "AwardEndorsed",
    "AwardQuorumReached",
)
_SHOWN = 5  # offenders named in a failed check's detail


def award_history(
    events: list[dict[str, Any]], deployment: Deployment
) -> dict[str, dict[str, Any]]:
    """Per distributor key: its address, its awards in chain order, and the balances and
    supply its token should hold (grants minus burns)."""
    out: dict[str, dict[str, Any]] = {}
    for key, address in distributors(deployment).items():
        awards: list[dict[str, Any]] = []
        open_award: dict[tuple[str, int, str], dict[str, Any]] = {}
        quorum: dict[tuple[str, int, str], dict[str, Any]] = {}
        endorsed: dict[str, list[str]] = defaultdict(list)  # award hash -> endorsing members
        for ev in events:
            if ev["contract"] != key or ev["event"] not in _AWARD_EVENTS:
                continue
            a = ev["args"]
            where = (ev["tx"], a["round"], a["scheme"])
            if ev["event"] == "AwardEndorsed":
                endorsed[a["awardHash"]].append(a["member"])
            elif ev["event"] == "AwardQuorumReached":  # emitted just before its CreditsAwarded
                quorum[where] = {
                    "hash": a["awardHash"],
                    "endorsements": a["endorsements"],
                    "active": a["activeCount"],
                }
            elif ev["event"] == "CreditsAwarded":
                award = {
                    "round": a["round"],
                    "scheme": scheme_name(a["scheme"]),
                    "scheme_id": a["scheme"],
                    "awarder": a["awarder"],
                    "quorum": quorum.get(where),
                    "total": a["total"],
                    "recipients": a["recipients"],
                    "grants": {},
                    "penalties": {},
                    "block": ev["block"],
                    "tx": ev["tx"],
                }
                awards.append(award)
                open_award[where] = award
            elif ev["event"] == "CreditAwarded" and where in open_award:
                open_award[where]["grants"][a["account"]] = a["amount"]
            elif ev["event"] == "ContributorPenalized" and where in open_award:
                open_award[where]["penalties"][a["account"]] = {
                    "penalty": a["penalty"],
                    "burned": a["burned"],
                }
        balances: dict[str, int] = defaultdict(int)
        for award in awards:
            for account, amount in award["grants"].items():
                balances[account] += amount
            for account, p in award["penalties"].items():
                balances[account] -= p["burned"]
        out[key] = {
            "address": address,
            "awards": awards,
            "endorsed": dict(endorsed),
            "balances": {a: v for a, v in sorted(balances.items()) if v},
            "supply": sum(balances.values()),
        }
    return out


def award_digest(award: dict[str, Any]) -> str:
    """``keccak256(abi.encode(round, scheme, grants, penalties))`` of an award as the logs show it
    (grants and the penalties asked, in the order sent), as members endorse it."""
    grants = [(a, v) for a, v in award["grants"].items()]
    penalties = [(a, p["penalty"]) for a, p in award["penalties"].items()]
    encoded = abi_encode(
        ["uint256", "bytes32", "(address,uint256)[]", "(address,uint256)[]"],
        [award["round"], bytes.fromhex(award["scheme_id"][2:]), grants, penalties],
    )
    return "0x" + keccak(encoded).hex()


def _by_quorum(
    award: dict[str, Any], endorsed: dict[str, list[str]], quorum: tuple[int, int]
) -> bool:
    q = award.get("quorum")
    if not q or q["hash"] != award_digest(award):
        return False
    num, den = quorum
    return (
        len(set(endorsed.get(q["hash"], []))) >= q["endorsements"]
        and q["endorsements"] * den > q["active"] * num
    )


def award_violations(
    awards: list[dict[str, Any]],
    rounds: list[dict[str, Any]],
    admin: str,
    budget: int,
    endorsed: dict[str, list[str]] | None = None,
    quorum: tuple[int, int] = (2, 3),
) -> dict[str, list[str]]:
    """Per rule of :data:`AWARD_RULES`, what breaks it (empty lists: none), from the awards
    (as :func:`award_history` builds them), the endorsements (award hash -> members), the
    RoundLedger's quorum fraction and its history (``collect``'s rounds)."""
    by_number = {r["round"]: r for r in rounds}
    found: dict[str, list[str]] = {rule: [] for rule in AWARD_RULES}
    seen: set[tuple[int, str]] = set()
    per_round: dict[int, int] = defaultdict(int)
    for aw in awards:
        tag = f"round {aw['round']} {aw['scheme']}"
        if aw["total"] != sum(aw["grants"].values()) or aw["recipients"] != len(aw["grants"]):
            found["sums"].append(
                f"{tag}: total {aw['total']} over {aw['recipients']} recipients, "
                f"grants sum to {sum(aw['grants'].values())} over {len(aw['grants'])}"
            )
        if (aw["round"], aw["scheme"]) in seen:
            found["once"].append(f"{tag}: awarded again")
        seen.add((aw["round"], aw["scheme"]))
        if aw["awarder"].lower() != admin.lower() and not _by_quorum(aw, endorsed or {}, quorum):
            found["once"].append(
                f"{tag}: sent by {aw['awarder']}, neither the admin nor on a member quorum"
            )
        r = by_number.get(aw["round"])
        final = r if r is not None and r["finalized"] else None
        accepted = {a.lower() for a in final["accepted"]} if final is not None else set()
        committed = {c["account"].lower() for c in final["commits"]} if final is not None else set()
        for account in aw["grants"]:
            if account.lower() not in accepted:
                why = "the round is not finalized" if final is None else "not in its accepted set"
                found["grants"].append(f"{tag}: {account} ({why})")
        for account, p in aw["penalties"].items():
            if (
                account.lower() in accepted
                or account.lower() not in committed
                or p["burned"] > p["penalty"]
            ):
                found["penalties"].append(f"{tag}: {account}")
        per_round[aw["round"]] += aw["total"]
    found["budget"] = [
        f"round {n}: {total} > {budget}" for n, total in sorted(per_round.items()) if total > budget
    ]
    return found


def check_awards(
    w3: Web3,
    deployment: Deployment,
    history: dict[str, Any],
    quorum: tuple[int, int],
    check: Callable[..., None],
) -> dict[str, str]:
    """Run the checks of the module docstring on every distributor in ``history["incentives"]``
    (``quorum``: the RoundLedger's fraction); returns distributor key -> its token's address
    (for the caller's code check)."""
    tokens: dict[str, str] = {}
    abi = compile_contracts()["IncentiveDistributor"]["abi"]
    for key, d in history["incentives"].items():
        views = w3.eth.contract(address=d["address"], abi=abi).functions
        try:
            token_address, *bound = (
                Web3.to_checksum_address(f().call())
                for f in (views.credit, views.roundLedger, views.registry)
            )
        except (LedgerError, Web3Exception) as exc:
            check(f"{key}: answers as an IncentiveDistributor", False, f"{d['address']}: {exc}")
            continue
        client = DistributorClient(
            w3, {"IncentiveDistributor": d["address"], "ContributionCredit": token_address}
        )
        tokens[key] = token_address
        check(
            f"{key}: pays for this deployment's RoundLedger and registry",
            tuple(bound)
            == (deployment.addresses["RoundLedger"], deployment.addresses["HospitalRegistry"]),
            f"round ledger {bound[0]}, registry {bound[1]}",
        )
        budget = d["budget_per_round"] = client.budget_per_round()
        d["token"] = token_address
        found = award_violations(
            d["awards"], history["rounds"], deployment.admin, budget, d["endorsed"], quorum
        )
        for rule, offenders in found.items():
            more = len(offenders) - _SHOWN
            detail = "; ".join(offenders[:_SHOWN]) + (f"; and {more} more" if more > 0 else "")
            check(
                f"{key}: {AWARD_RULES[rule]}" + (f" ({budget})" if rule == "budget" else ""),
                not offenders,
                detail or f"{len(d['awards'])} awards",
            )
        totals: dict[int, int] = defaultdict(int)
        for aw in d["awards"]:
            totals[aw["round"]] += aw["total"]
        mismatched = [n for n, t in sorted(totals.items()) if client.awarded_in_round(n) != t]
        check(
            f"{key}: awards per round match its awardedInRound",
            not mismatched,
            "rounds " + ", ".join(map(str, mismatched)) if mismatched else f"{len(totals)} rounds",
        )
        minter = Web3.to_checksum_address(client.credit.functions.minter().call())
        wrong = [a for a, v in d["balances"].items() if client.balance(a) != v]
        check(
            f"{key}: is the only minter of its token {token_address}, whose balances and supply "
            "equal the awards minus the burns",
            minter == Web3.to_checksum_address(d["address"])
            and not wrong
            and client.supply() == d["supply"],
            f"minter {minter}, supply {client.supply()} (awards say {d['supply']})"
            + (f"; balances differ for {', '.join(wrong[:_SHOWN])}" if wrong else ""),
        )
    return tokens
