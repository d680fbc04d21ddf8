"""secagg's consistency check and release guard (Bonawitz et al. 2017, section 6), without a
network: signed survivor statements, the 2n/3 threshold, and the on-disk release log that
never gives out both halves of one member's secrets."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.crypto.secagg.masking import SecAggError
from node.peer.pipeline import PeerSettings
from node.protection.secagg_consistency import (
    ReleaseLog,
    agreed_statement,
    consistency_threshold,
    keys_hash,
    sign_statement,
)

CTX = b"31337|0xledger"
PEERS = [f"0x{c * 40}" for c in "abcde"]
KEYS = {p: Ed25519PrivateKey.generate() for p in PEERS}
PUBLIC = {p: k.public_key().public_bytes_raw() for p, k in KEYS.items()}
ALL = (tuple(PEERS), keys_hash({p: bytes([i]) * 32 for i, p in enumerate(PEERS)}), tuple(PEERS))


def signed(statement, signers, round_=7):
    return [(p, statement, sign_statement(KEYS[p], CTX, round_, statement)) for p in signers]


@pytest.mark.parametrize("n", range(3, 40))
def test_two_statements_at_the_threshold_need_more_than_n_over_3_double_signers(n):
    t = consistency_threshold(n)
    assert t <= n  # every member present can always agree
    corrupt = (n - 1) // 3  # the most section 6 tolerates: fewer than n/3
    assert 2 * t - n > corrupt  # two t-sets overlap in more members than there are liars
    assert t == {3: 3, 4: 3, 5: 4, 8: 6, 16: 11}.get(n, t)


def test_only_a_statement_with_t_valid_survivor_signatures_is_agreed():
    t = consistency_threshold(5)  # 4
    assert agreed_statement(signed(ALL, PEERS[:3]), PUBLIC, CTX, 7, t) is None
    assert agreed_statement(signed(ALL, PEERS[:4]), PUBLIC, CTX, 7, t) == ALL
    forged = [(p, ALL, b"\x00" * 64) for p in PEERS[3:]]  # bad signatures do not count
    assert agreed_statement(signed(ALL, PEERS[:3]) + forged, PUBLIC, CTX, 7, t) is None
    other_round = signed(ALL, PEERS[3:4], round_=8)  # a signature for another round does not count
    assert agreed_statement(signed(ALL, PEERS[:3]) + other_round, PUBLIC, CTX, 7, t) is None
    fewer = (tuple(PEERS), ALL[1], tuple(PEERS[:4]))  # a non-survivor's signature does not count
    assert agreed_statement(signed(fewer, PEERS[1:]), PUBLIC, CTX, 7, t) is None


def test_the_split_view_attack_gets_no_statement_agreed():
    """The attacker (e) signs both halves' views: each half has 2 honest + 1 forged signature."""
    t = consistency_threshold(5)
    with_e = ALL
    without_e = (
        tuple(PEERS[:4]),
        keys_hash({p: bytes([i]) * 32 for i, p in enumerate(PEERS[:4])}),
        tuple(PEERS),
    )
    votes = signed(with_e, ["0x" + "a" * 40, "0x" + "b" * 40, PEERS[4]]) + signed(
        without_e, PEERS[2:]
    )
    assert agreed_statement(votes, PUBLIC, CTX, 7, t) is None
    with pytest.raises(
        SecAggError, match="different survivor sets"
    ):  # at a bare majority both would pass
        agreed_statement(votes, PUBLIC, CTX, 7, 3)


def test_a_peer_never_releases_both_shares_of_one_member_even_after_a_restart(tmp_path):
    path = tmp_path / "released.json"
    log = ReleaseLog(path)
    a, b, c, d = PEERS[:4]
    with pytest.raises(SecAggError, match="both the self-mask and the mask-key share"):
        log.record("3", b"x" * 32, seeds_for=[a, b], keys_for=[b])
    log.record("3", b"x" * 32, seeds_for=[a, b], keys_for=[c])
    log.record("3", b"x" * 32, seeds_for=[a, b], keys_for=[c])  # the same release again is fine
    for restarted in (log, ReleaseLog(path)):
        with pytest.raises(SecAggError, match=r"already released.*both shares of \['0xaaaa"):
            restarted.record(
                "3", b"y" * 32, seeds_for=[b], keys_for=[a]
            )  # a second request for a's mask key
        with pytest.raises(SecAggError, match="already released"):
            restarted.record("3", b"y" * 32, seeds_for=[a, b, d], keys_for=[])
    ReleaseLog(path).record(
        "4", b"z" * 32, seeds_for=[c], keys_for=[a]
    )  # a new round has new secrets
    path.write_text("{not json")
    with pytest.raises(SecAggError, match="unreadable"):
        ReleaseLog(path)


def test_a_sum_needs_at_least_three_contributors():
    assert PeerSettings(protection="secagg", rule="fedavg").min_contributors == 3
    assert PeerSettings(protection="ckks", rule="fedavg", min_contributors=5).min_contributors == 5
    for bad in (0, 1, 2):
        with pytest.raises(
            ValueError, match="min_contributors must be at least 3.*reveals each one"
        ):
            PeerSettings(protection="secagg", rule="fedavg", min_contributors=bad)


def test_a_signature_covers_the_whole_statement():
    base = signed(ALL, PEERS[:4])
    for changed in [
        (ALL[0][:4], ALL[1], ALL[2]),
        (ALL[0], b"\x01" * 32, ALL[2]),
        (ALL[0], ALL[1], ALL[2][:4]),
    ]:
        moved = [(p, changed, sig) for p, _, sig in base if p in changed[2]]
        assert agreed_statement(moved, PUBLIC, CTX, 7, 4) is None
