"""secagg with a committee (docs/secagg.md): the Shamir threshold over the seats is the chain's
quorum over them, its privacy bound is at least the committee's sizing bound, and a member's
wait for mask keys leaves it half the commit window."""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import pytest

from node.protection.secagg_dealing import advert_wait, seats_of, share_threshold


def _seats(k: int) -> frozenset[str]:
    return frozenset(f"0x{i:040x}" for i in range(k))


@pytest.mark.parametrize("k", range(1, 301))
def test_the_threshold_is_the_quorum_and_bounds_coalitions_by_the_sizing_rule(k: int) -> None:
    t = share_threshold(_seats(k))
    # RoundLedger's quorum over k seats: the fewest votes with votes * 3 > k * 2
    assert t == next(v for v in range(k + 1) if v * 3 > k * 2)
    # a coalition needs 2t - k seats to split the honest ones (docs/secagg.md); the default k
    # bounds P[X >= ceil(k / 3)], so it bounds this too
    assert 2 * t - k >= math.ceil(k / 3)
    assert 2 * t - k <= t  # splitting is the cheaper attack: the bound is 2t - k


def _ctx(round_timeout: float, deadline_in: float, committee=None) -> SimpleNamespace:
    info = SimpleNamespace(commit_deadline=time.time() + deadline_in)
    ledger = SimpleNamespace(round_info=lambda _round: info)
    settings = SimpleNamespace(round_timeout=round_timeout)
    return SimpleNamespace(ledger=ledger, settings=settings, committee=committee)


def test_the_advert_wait_leaves_half_the_commit_window() -> None:
    assert advert_wait(_ctx(60.0, 50.0), 1) == pytest.approx(25.0, abs=0.5)
    assert advert_wait(_ctx(10.0, 50.0), 1) == 10.0
    assert advert_wait(_ctx(60.0, -5.0), 1) == 0.0  # the window closed: no wait


def test_seats_of_reads_the_committee_or_none() -> None:
    seats = _seats(4)
    assert seats_of(_ctx(1.0, 1.0, committee=lambda r: seats), 3) == seats
    assert seats_of(_ctx(1.0, 1.0), 3) is None
