"""Who opens the next round, without a coordinator.

Any active member may open round ``r`` once round ``r - 1`` has finalized or failed; the
contract lets only one of them succeed (``openRound`` reverts with ``RoundLedgerRoundStillOpen``
for the others). To avoid a stampede of transactions, members take turns: the *preferred
opener* of round ``r`` is the active member at index ``(r - 1) mod n`` in address order, and
the member ranked ``k`` places after it waits ``k`` times the fallback delay before trying,
so a dead opener costs one fallback delay, not a stalled campaign.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["opener_rank"]


def opener_rank(round_: int, members: Sequence[str], me: str) -> int:
    """0 for round ``round_``'s preferred opener, k for the k-th fallback.

    ``members`` are the active members' addresses (any order; sorted case-insensitively here).
    Raises ValueError when ``me`` is not among them or ``round_ < 1``.
    """
    if round_ < 1:
        raise ValueError(f"rounds start at 1, got {round_}")
    order = sorted(m.lower() for m in members)
    try:
        mine = order.index(me.lower())
    except ValueError:
        raise ValueError(f"{me} is not an active member") from None
    return (mine - (round_ - 1)) % len(order)
