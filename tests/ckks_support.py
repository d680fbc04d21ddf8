"""Helpers shared by the ckks end-to-end tests (tests/test_protection_ckks*.py): the round's
(key holder, aggregator) re-derived from the chain, and a peer that runs another protection
mode than the consortium's."""

from __future__ import annotations

from eth_abi import encode
from eth_utils import keccak
from web3 import Web3

from ledger import load_state
from ledger.chain import get_logs
from node.peer.pipeline import HospitalPeer, RoundOutcome
from node.protection import ProtectionMode


def chain_roles(state, round_: int, among: set[str] | None = None) -> tuple[str, str]:
    """(key holder, aggregator) of ``round_``, re-derived here from the chain's beacon reveals
    (with ``among``, e.g. a committee's seats, only the revealers in it take part):
    each SecretRevealed event's secret, checked against its member's SecretCommitted
    commitment, mixed as keccak(abi.encode(XOR of keccak(abi.encode(secret, member)), round,
    chain id, beacon)), hashed with the deployment and the round, read as an integer x; over the
    revealers in address order, holder = members[x mod n], aggregator = the others[(x div n) mod (n - 1)]."""
    w3, deployment = load_state(state)
    beacon = deployment.addresses["RoundBeacon"]
    topic = keccak(text="SecretRevealed(uint256,address,bytes32)")
    committed = keccak(text="SecretCommitted(uint256,address,bytes32)")
    mix, members = 0, []
    for log in get_logs(w3, [beacon], deployment.start_block, [topic, round_.to_bytes(32, "big")]):
        member, secret = "0x" + bytes(log["topics"][2])[-20:].hex(), bytes(log["data"])[:32]
        (c,) = get_logs(
            w3,
            [beacon],
            deployment.start_block,
            [committed, round_.to_bytes(32, "big"), log["topics"][2]],
        )
        assert bytes(c["data"])[:32] == keccak(
            encode(["bytes32", "address", "uint256", "address"], [secret, member, round_, beacon])
        )
        mix ^= int.from_bytes(keccak(encode(["bytes32", "address"], [secret, member])), "big")
        members.append(Web3.to_checksum_address(member))
    value = keccak(
        encode(
            ["bytes32", "uint256", "uint256", "address"],
            [mix.to_bytes(32, "big"), round_, deployment.chain_id, beacon],
        )
    )
    head = (
        f"medmesh/round-seed/v1|ckks-roles|{deployment.chain_id}|"
        f"{deployment.addresses['RoundLedger'].lower()}|{round_}|"
    ).encode()
    x = int.from_bytes(keccak(head + value), "big")
    members.sort(key=str.lower)
    if among is not None:
        members = [m for m in members if m.lower() in {a.lower() for a in among}]
    holder = members[x % len(members)]
    rest = [m for m in members if m != holder]
    return holder, rest[(x // len(members)) % len(rest)]


def peer_with_mode(mode: type[ProtectionMode]) -> type[HospitalPeer]:
    """A peer class that runs ``mode`` (a subclass of the consortium's mode, e.g. a forging
    aggregator) in place of the one :func:`node.protection.make_mode` picks, through the peer's
    public ``protection`` and ``mode_context()``; its class attribute ``outcomes`` maps
    (round, address) to what each of its peers' :meth:`~node.peer.pipeline.HospitalPeer.run_round` returned."""

    class ModePeer(HospitalPeer):
        outcomes: dict[tuple[int, str], RoundOutcome] = {}

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.protection = mode(self.mode_context())

        async def run_round(self, round_: int) -> RoundOutcome:
            out = await super().run_round(round_)
            ModePeer.outcomes[(round_, self.address)] = out
            return out

    ModePeer.__name__ = ModePeer.__qualname__ = f"{mode.__name__}Peer"
    return ModePeer
