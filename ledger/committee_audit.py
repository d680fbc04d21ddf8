"""The audit of the per-round aggregation committee (issue 19, docs/committee.md).

For every round opened with a committee (``CommitteeSizeSet`` k, below the round's member
count), the audit redraws the committee from the chain's records alone and checks the chain
against it:

- the slot table: each Active member's registry slot and the slots ever opened
  (``slotCount``), replayed from the registry's events as ``HospitalRegistry`` assigns them (a
  member joining the Active set takes the slot the last departure freed, else a new one);
- the key: ``keccak256(abi.encode(value, round))`` with ``value`` the beacon value recomputed
  from the round's reveals (:mod:`ledger.beacon_audit`), never the chain's word for it;
- the seats: the members whose slot's seat (:func:`ledger.committee_draw.seat`) is below k.

It then checks that ``RoundLedger.committeeOf`` fixed that (k, domain, key), that every
attestation and every rejection came from a seat (none at all while the beacon had no value;
only seats receive the updates), and that a round was finalized by more than the quorum
fraction of k on votes of seats, with k (not the round's member count) reported as the
finalization's and failure's denominator. Each round gets a
``committee`` entry: size, domain, key, seats and vacant seats.
"""

from __future__ import annotations

from typing import Any

from .committee_draw import committee_key, seat

__all__ = ["check_committee", "committee_setting", "slot_tables"]

_JOIN = ("Admitted", "Reinstated")
_LEAVE = ("Suspended", "Revoked", "Exited")


def committee_setting(events: list[dict[str, Any]]) -> int:
    """The committee size rounds open with (``CommitteeSizeSet``; 0: every member attests)."""
    size = 0
    for ev in events:
        if ev["contract"] == "RoundLedger" and ev["event"] == "CommitteeSizeSet":
            size = ev["args"]["size"]
    return size


def slot_tables(events: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Per round, at its opening: ``slots`` (Active account -> registry slot) and ``domain``
    (slots ever opened), replayed from the registry's events in chain order."""
    slots: dict[str, int] = {}
    free: list[int] = []
    opened = 0
    tables: dict[int, dict[str, Any]] = {}
    for ev in events:
        contract, kind, a = ev["contract"], ev["event"], ev["args"]
        if contract == "HospitalRegistry" and kind in _JOIN and a["account"] not in slots:
            if free:
                slots[a["account"]] = free.pop()
            else:
                slots[a["account"]], opened = opened, opened + 1
        elif contract == "HospitalRegistry" and kind in _LEAVE and a["account"] in slots:
            free.append(slots.pop(a["account"]))
        elif contract == "RoundLedger" and kind == "RoundOpened":
            tables[a["round"]] = {"slots": dict(slots), "domain": opened}
    return tables


def _seats(table: dict[str, Any], key: bytes, size: int) -> list[str]:
    domain = table["domain"]
    return sorted(
        (a for a, s in table["slots"].items() if s < domain and seat(key, s, domain) < size),
        key=lambda a: int(a, 16),
    )


def check_committee(
    events: list[dict[str, Any]],
    rounds: list[dict[str, Any]],
    on_chain: dict[int, tuple[int, int, bytes | str]],
    quorum: tuple[int, int],
    check: Any,
) -> None:
    """Run the checks above over ``rounds`` (the audit's history, after
    :func:`ledger.beacon_audit.check_beacon`); ``on_chain`` maps each round to what
    ``RoundLedger.committeeOf`` returns for it (the key as bytes or 0x hex)."""
    size = committee_setting(events)
    if not size:
        return
    tables = slot_tables(events)
    num, den = quorum
    for r in rounds:
        n = r["round"]
        k = size if size < r["member_count"] else 0
        if not k:
            check(
                f"round {n}: no committee below its {r['member_count']} members",
                on_chain[n][0] == 0,
            )
            continue
        table = tables.get(n, {"slots": {}, "domain": 0})
        value = (r.get("beacon") or {}).get("value")
        key = None if value is None else committee_key(bytes.fromhex(value[2:]), n)
        seats = [] if key is None else _seats(table, key, k)
        r["committee"] = {
            "size": k,
            "domain": table["domain"],
            "key": None if key is None else "0x" + key.hex(),
            "seats": seats,
            "vacant": k - len(seats) if key is not None else None,
        }
        want = (k, table["domain"], key or bytes(32))
        raw = on_chain[n][2]
        got = (
            on_chain[n][0],
            on_chain[n][1],
            bytes.fromhex(raw[2:]) if isinstance(raw, str) else bytes(raw),
        )
        check(
            f"round {n}: RoundLedger.committeeOf is the committee its beacon implies "
            f"({k} of {table['domain']} slots)",
            got == want,
            f"chain says size {got[0]}, domain {got[1]}, key 0x{got[2].hex()}",
        )
        for what, accounts in (
            ("attester", {x["account"] for x in r["attestations"]}),
            ("rejecter", {x["reporter"] for x in r["rejections"]}),
        ):
            outsiders = sorted(accounts - set(seats), key=lambda a: int(a, 16))
            check(
                f"round {n}: every {what} sits on its committee",
                not outsiders,
                f"not seated: {', '.join(outsiders)}" if outsiders else "",
            )
        if r["status"] not in ("finalized", "failed"):
            continue
        check(
            f"round {n}: its closing counted the quorum over the {k} committee seats",
            r["active_at_close"] == k,
            f"closed over {r['active_at_close']}",
        )
        if not r["finalized"]:
            continue
        votes = [
            x["account"]
            for x in r["attestations"]
            if not x["late"] and x["vote_key"] == r["winning_vote_key"] and x["account"] in seats
        ]
        check(
            f"round {n}: the winner had {len(votes)} votes of seats, > {num}/{den} of {k}",
            len(votes) * den > k * num and r["winning_votes"] <= len(votes),
            f"counted {r['winning_votes']}",
        )
