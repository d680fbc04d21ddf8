"""The attack of issue 15, section 3: a member that opens the round grinds the ckks role draw.

Two colluders, the opener and one other, want the opener to hold the key and the other to
aggregate: together they decrypt every ciphertext of the round. The opener tries variants of
its ``openRound`` transaction (only trailing calldata differs) and keeps the block that draws
the pair it wants. Each try is a copy of the chain (``fork_embedded``) on which the variant
was mined; keeping the one that hit stands for an opener that predicts the block its
transaction makes (a chain that mines one block per transaction) or that produces blocks.
(The embedded chain draws a fresh mixHash per block, so here the kept copy is the chain.)

With the block-hash seed that works within a few dozen tries (1/12 of them hit, 4 members).
With the beacon, the secrets were committed before the round opened: every variation of the
opening, and every order of the reveals, gives the same value; the coalition's only lever is
withholding, one choice per withholder, and the beacon needs a quorum of reveals.
"""

from __future__ import annotations

from itertools import combinations

from eth_utils import function_signature_to_4byte_selector, keccak
from ledger_support import LedgerSetup

from ledger import LedgerClient, fork_embedded
from ledger.beacon import beacon_info, commit_secret, reveal_secret, value_from_reveals
from ledger.randomness import mix_seed, round_seed
from ledger.tx import send
from node.protection.ckks_mode import draw_roles

#: Tries the grinding opener gets: it fails all of them with probability (11/12)^200 < 3e-8.
TRIES = 200
#: The clock of every opening: only the transaction differs between tries.
OPEN_AT = 2_000_000_000


def _open_variant(w3, s: LedgerSetup, k: int) -> None:
    """The opener's ``openRound`` with ``k`` as trailing calldata (the contract ignores it)."""
    w3.provider.ethereum_tester.time_travel(OPEN_AT)
    data = function_signature_to_4byte_selector("openRound()") + k.to_bytes(32, "big")
    send(w3, s.hospitals[0].account, {"to": s.deployment.addresses["RoundLedger"], "data": data})


def _pair(client: LedgerClient, seed: bytes, revealers: set[str] | None = None) -> tuple[str, str]:
    members = [
        i
        for i in client.identities()
        if i.status == "active" and (revealers is None or i.address in revealers)
    ]
    holder, aggregator = draw_roles(seed, members)
    return holder.address, aggregator.address


def test_block_hash_seed_lets_a_grinding_opener_choose_the_pair(
    ledger_consortium: LedgerSetup,
) -> None:
    s = ledger_consortium
    wanted = (s.hospitals[0].address, s.hospitals[1].address)
    kept = None
    for k in range(TRIES):
        trial = fork_embedded(s.w3)
        _open_variant(trial, s, k)
        client = LedgerClient(trial, s.deployment)
        if _pair(client, round_seed(client, 1, "ckks-roles")) == wanted:
            kept = client
            break
    assert kept is not None, f"no variant of {TRIES} drew the colluding pair"
    assert kept.round_info(1).opener == s.hospitals[0].address  # an ordinary opening, on the record


def test_beacon_value_is_fixed_before_the_opener_acts(ledger_consortium: LedgerSetup) -> None:
    s = ledger_consortium
    secrets = {h.address: keccak(text=f"secret-{i}") for i, h in enumerate(s.hospitals)}
    for h in s.hospitals:
        commit_secret(h, 1, secrets[h.address])
    expected = value_from_reveals(
        s.w3.eth.chain_id, s.deployment.addresses["RoundBeacon"], 1, secrets
    )
    values = set()
    for k in range(12):  # as many tries as there are ordered pairs: any steering would show
        trial = fork_embedded(s.w3)
        _open_variant(trial, s, k)
        order = s.hospitals[k % 4 :] + s.hospitals[: k % 4]  # and every reveal order
        for h in order:
            reveal_secret(LedgerClient(trial, s.deployment, h.account), 1, secrets[h.address])
        values.add(beacon_info(LedgerClient(trial, s.deployment), 1).value)
    assert values == {expected}


def test_withholding_colluders_choose_among_few_values(ledger_consortium: LedgerSetup) -> None:
    """The coalition's reach: reveal both, or withhold one (3 of 4 must reveal); each choice is
    one value the honest secrets fix, so at most 3 of the 12 ordered pairs are reachable."""
    s = ledger_consortium
    secrets = {h.address: keccak(text=f"secret-{i}") for i, h in enumerate(s.hospitals)}
    for h in s.hospitals:
        commit_secret(h, 1, secrets[h.address])
    colluders = s.hospitals[:2]
    reachable = set()
    for n in (0, 1, 2):
        for withheld in combinations(colluders, n):
            trial = fork_embedded(s.w3)
            _open_variant(trial, s, 0)
            revealers = [h for h in s.hospitals if h not in withheld]
            for h in revealers:
                reveal_secret(LedgerClient(trial, s.deployment, h.account), 1, secrets[h.address])
            client = LedgerClient(trial, s.deployment)
            client.w3.provider.ethereum_tester.time_travel(
                beacon_info(client, 1).reveal_deadline + 2
            )
            info = beacon_info(client, 1)
            if len(revealers) < 3:
                assert info.status == "failed"  # withholding both leaves no draw at all
                continue
            assert info.status == "ready"
            names = {h.address for h in revealers}
            reachable.add(_pair(client, mix_seed(s.deployment, 1, "ckks-roles", info.value), names))
    assert len(reachable) <= 3
