"""Robust ckks's evaluators (node/protection/ckks_robust.py): the key holder acts on a message only
if a strict majority of the round's 2f + 1 evaluators sent it bit for bit, naming the same members."""

from __future__ import annotations

from node.protection.ckks_robust import majority
from node.protection.ckks_wire import CkksMessage

MEMBERS = ("0xa", "0xb", "0xc")


def gram(sender: str, body: bytes, included: tuple[str, ...] = MEMBERS) -> CkksMessage:
    return CkksMessage("gram", 1, sender, included, body)


def test_a_strict_majority_of_identical_messages_is_needed():
    honest = b"\x01" * 64
    two_of_three = {"e1": gram("e1", honest), "e2": gram("e2", honest), "e3": gram("e3", b"x")}
    assert sorted(majority(two_of_three, 3)) == ["e1", "e2"]
    assert majority({"e1": gram("e1", honest), "e3": gram("e3", honest)}, 3) == ["e1", "e3"]
    assert majority({"e1": gram("e1", honest)}, 3) == []  # one of three is no majority
    assert majority({k: gram(k, k.encode()) for k in ("e1", "e2", "e3")}, 3) == []
    # the same bytes naming other members are another message
    other = {"e1": gram("e1", honest), "e2": gram("e2", honest, MEMBERS[:2])}
    assert majority(other, 3) == []
    assert sorted(majority({f"e{i}": gram(f"e{i}", honest) for i in range(3)}, 5)) == [
        "e0",
        "e1",
        "e2",
    ]
