"""A peer's committee as a ckks message may need it before the peer drew it itself
(``RoundCommittee.seats_now``, docs/secagg.md "ckks with a committee"): on the embedded chain,
six members, a committee of four. Before the round's beacon is ready there is no committee,
and the ckks role draw refuses (never falling back to every member); once every member
revealed, the committee read from the chain is the one the contract's own ``committeeSeat``
seats, and the roles are drawn among those seats only."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from eth_utils import keccak
from ledger_support import committee_chain, committee_setup

from ledger.beacon import commit_secret, reveal_secret
from ledger.committee import committee_info, seat_on_chain, slot_of
from node.consensus.committee import CommitteeError
from node.crypto.ckks.scheme import CKKSError
from node.peer.committee import RoundCommittee
from node.protection.ckks_mode import CkksMode

N, K = 6, 4


def test_the_committee_is_read_from_the_chain_once_its_beacon_is_ready() -> None:
    s = committee_setup(*committee_chain(N, K), N)
    first = s.hospitals[0]
    peer = SimpleNamespace(
        ledger=first,
        address=first.address,
        log=logging.LoggerAdapter(logging.getLogger("test"), {}),
        active_members=lambda: [i for i in first.identities() if i.status == "active"],
    )
    committee = RoundCommittee(peer)
    ctx = SimpleNamespace(
        committee=committee.members, draw_committee=committee.seats_now, members=peer.active_members
    )
    mode = SimpleNamespace(ctx=ctx)
    secret = {h.address: keccak(text=f"secret-{h.address}") for h in s.hospitals}
    for h in s.hospitals:
        commit_secret(h, 1, secret[h.address])
    first.open_round()
    # opened, nothing revealed: no key, no committee, and no role draw among every member
    with pytest.raises(CommitteeError, match="not drawn yet"):
        committee.seats_now(1)
    with pytest.raises(CKKSError, match="no role draw for round 1"):
        CkksMode._eligible(mode, 1)
    assert committee.members(1) is None  # nothing was kept
    for h in s.hospitals:
        reveal_secret(h, 1, secret[h.address])
    info = committee_info(first, 1)
    assert info.key is not None and info.size == K
    contract = {
        h.address.lower()
        for h in s.hospitals
        if seat_on_chain(first, info.key, slot_of(first, h.address).slot, info.domain) < K
    }
    assert committee.seats_now(1) == contract and len(contract) == K
    assert committee.members(1) == contract  # kept: the peer's own draw reads it
    assert {m.address.lower() for m in CkksMode._eligible(mode, 1)} == contract
