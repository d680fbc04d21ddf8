"""Issue 16's late-node vote and previous-round screen next to issue 19's committee
(docs/committee.md): a member back after the commit window votes only if the round's committee
seats it (a follower cannot attest; it fetches the finalized aggregate instead), and with a
committee the free-rider screen does not use the previous round's updates, which only the
members seated in both rounds hold. Unit tests: a stand-in object carries only the attributes
the method reads."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import trio

from node.peer.committee import RoundCommittee
from node.peer.pipeline import HospitalPeer, RoundOutcome


class _Committee:
    ready = RoundCommittee.ready  # the real draw-if-enabled step, over this stand-in's draw

    def __init__(self, *, enabled: bool, seated: bool) -> None:
        self.enabled, self._seated = enabled, seated
        self.drawn: list[int] = []

    async def draw(self, round_: int) -> None:
        self.drawn.append(round_)

    def seated(self, round_: int) -> bool:
        return self._seated


def _late_member(committee: _Committee) -> SimpleNamespace:
    fetched: list[int] = []

    async def finish(out: RoundOutcome, new_params: object) -> RoundOutcome:
        assert new_params is None  # nothing of its own: the aggregate comes from the committee
        fetched.append(out.round)
        out.finalized = True
        return out

    return SimpleNamespace(
        committee=committee,
        refresh_directory=lambda: None,
        attested_lead=lambda round_: None,  # no pair yet: the seated member's path stops here
        protection=SimpleNamespace(sum_only=False),
        _finish=finish,
        fetched=fetched,
    )


def test_a_late_follower_fetches_the_aggregate_instead_of_voting() -> None:
    committee = _Committee(enabled=True, seated=False)
    peer = _late_member(committee)
    peer.attested_lead = lambda round_: (_ for _ in ()).throw(AssertionError("a follower votes"))
    out = trio.run(HospitalPeer.vote_attested, peer, 7)
    assert committee.drawn == [7] and peer.fetched == [7]
    assert out.finalized and out.error is None


def test_a_late_committee_member_goes_on_to_the_vote() -> None:
    committee = _Committee(enabled=True, seated=True)
    peer = _late_member(committee)
    out = trio.run(HospitalPeer.vote_attested, peer, 7)
    assert committee.drawn == [7] and peer.fetched == []
    assert out.error is not None and "no attested pair" in out.error


def test_without_a_committee_nothing_is_drawn() -> None:
    committee = _Committee(enabled=False, seated=True)
    out = trio.run(HospitalPeer.vote_attested, _late_member(committee), 7)
    assert committee.drawn == [] and "no attested pair" in (out.error or "")


def test_the_previous_round_screen_only_without_a_committee() -> None:
    earlier = {"0xa": np.ones(3, np.float32)}
    alone = SimpleNamespace(last_accepted=(6, earlier), committee=SimpleNamespace(enabled=False))
    assert HospitalPeer.earlier_updates(alone, 7) is earlier
    assert HospitalPeer.earlier_updates(alone, 8) is None  # round 7 not adopted here
    seated = SimpleNamespace(last_accepted=(6, earlier), committee=SimpleNamespace(enabled=True))
    assert HospitalPeer.earlier_updates(seated, 7) is None
