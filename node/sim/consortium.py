"""`medmesh simulate`: the real round pipeline for N members in one process, for sizing a
consortium before it goes live.

Every member is a :class:`~node.peer.pipeline.HospitalPeer`, the class a node process runs, with
its protection mode and aggregation rule, on a real chain (the embedded py-evm chain, or anvil)
running the compiled contracts. Only the network is replaced: members talk over
:class:`gossip.MemoryHost`, which runs the same host interface in memory and counts every
payload byte each member sends and receives. Each member trains on ``rows`` rows drawn (with
replacement, seeded) from the Wisconsin breast-cancer training split, scaled by the published
feature ranges, so no set-up traffic precedes round 1. Privacy is accounted with RDP, calibrated
once for all members (the PRV accountant a node uses by default costs seconds per member and
round here, and changes no byte and no transaction).

Per round the report gives: payload bytes sent and received per member (blobs and control
messages, as :class:`gossip.GossipStats` counts them), the chain's transactions and gas (every
block mined during the round), the round's wall time, and whether every member finalized the
same aggregate. ``committee`` is the aggregation committee's size k (issue 19,
docs/committee.md): below N the chain draws k attesters per round from the beacon, members
seal their updates to the committee only, and the others fetch the finalized aggregate; the
report then splits the bytes between committee members and followers. ``None`` (or N) is the
whole consortium: every member sends its update to every other, and bytes grow with N.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import trio

from gossip import GossipStats, Transport
from ledger import LedgerClient, connect, deploy, dev_account, is_embedded
from ledger.committee import set_committee_size
from ledger.shared import share_reads
from node.consensus.update import parameters_hash
from node.data.samples import TabularData, breast_cancer_split
from node.learning.models import mlp_for_parameters
from node.learning.privacy import PrivacyLedger, cohort_ceiling
from node.peer.identity import NodeIdentity
from node.peer.pipeline import HospitalPeer, RoundOutcome
from node.service.fsutil import atomic_write_json
from node.sim.demo import join
from node.sim.democonfig import DemoConfig
from node.sim.hosts import TRANSPORTS, connect_hosts, host_factory

__all__ = ["SimConfig", "simulate", "format_simulation"]

ROUND_TIMEOUT_PER_MEMBER_S = 10.0
"""The members' blob and quorum waits, per member: all N share one process, so a round's stages
take about N times one member's (5 s per member and round at N = 16 on the loaded 2-core
machine, ``benchmarks/results/simulate.json``); a fixed 120 s ran out at N = 64."""

COMMITTEE_RANGE = "--committee must be within 1..--peers ({n}), got {k}"
MAX_PEERS = 224
"""``RoundLedger.MAX_COMMITTERS``: a round takes at most 224 commitments (an accepted set is
a 224-bit mask over them). Past it the chain refuses the later members' commitments
(``RoundLedgerRoundFull``), and every other member holds its update until the commit window
closes, waiting for theirs: a simulated N = 256 stalled so."""


@dataclass(frozen=True)
class SimConfig:
    """``medmesh simulate``'s options."""

    peers: int = 8
    committee: int | None = None  # None (or peers): every member aggregates (K = N)
    rounds: int = 1
    params: int = 100_000
    protection: str = "sealed"
    rule: str = "fedavg"
    rows: int = 32  # training rows per member
    epsilon: float = 8.0
    seed: int = 0
    rpc: str | None = None  # None: the embedded chain
    transport: str = "memory"  # node.sim.hosts.TRANSPORTS
    json_path: Path | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.peers < 3:
            raise ValueError(f"--peers must be at least 3, got {self.peers}")
        if self.peers > MAX_PEERS:
            raise ValueError(
                f"--peers must be at most {MAX_PEERS}, got {self.peers}: a round takes at most "
                f"{MAX_PEERS} commitments (RoundLedger.MAX_COMMITTERS)"
            )
        if self.committee is not None and not 1 <= self.committee <= self.peers:
            raise ValueError(COMMITTEE_RANGE.format(k=self.committee, n=self.peers))
        if self.rounds < 1:
            raise ValueError(f"--rounds must be at least 1, got {self.rounds}")
        if self.rows < 2:
            raise ValueError(f"--rows must be at least 2, got {self.rows}")
        if self.transport not in TRANSPORTS:
            raise ValueError(
                f"--transport must be one of {', '.join(TRANSPORTS)}, got {self.transport!r}"
            )
        self.demo()  # validates rule, protection (sealed, secagg or ckks-fedavg with a committee) as the demo does

    def demo(self) -> DemoConfig:
        """The same campaign as ``medmesh demo`` options: the pipeline's settings come from here."""
        return DemoConfig(
            rounds=self.rounds,
            hospitals=self.peers,
            epsilon=self.epsilon,
            rule=self.rule,
            protection=self.protection,
            model=mlp_for_parameters(self.params, 30),
            scaling="bounds",
            seed=self.seed,
            accountant="rdp",
            commit_window=3600,
            attest_window=3600,
            round_timeout=max(120.0, ROUND_TIMEOUT_PER_MEMBER_S * self.peers),
            committee=self.committee if self.committee and self.committee < self.peers else 0,
        )


def _member_data(peers: int, rows: int, seed: int) -> list[TabularData]:
    pool = next(iter(breast_cancer_split(1, seed=seed).hospitals.values()))
    rng = np.random.default_rng(seed)
    out = []
    for i in range(peers):
        pick = rng.integers(0, len(pool), rows)
        out.append(TabularData(pool.x[pick], pool.y[pick], source=f"simulated member {i}"))
    return out


OnRound = Callable[[dict, list[HospitalPeer]], None]
"""Called after each round with its report row and the members (tests, progress)."""


def simulate(cfg: SimConfig, on_round: OnRound | None = None) -> dict:
    """Run the campaign; return the report (also written to ``cfg.json_path``)."""
    report = trio.run(_campaign, cfg, on_round or (lambda _row, _peers: None))
    if cfg.json_path:
        atomic_write_json(cfg.json_path, report)
    return report


async def _campaign(cfg: SimConfig, on_round: OnRound) -> dict:
    demo = cfg.demo()
    w3 = connect(cfg.rpc)
    admin = dev_account(w3)
    deployment = deploy(
        w3,
        admin,
        commit_window=demo.commit_window,
        attest_window=demo.attest_window,
        genesis_seats=cfg.peers,  # founders: N admissions, not N^2/3 endorsements (enrollment)
    )
    if is_embedded(w3):  # the members' registry reads meet across blocks (EmbeddedProvider)
        w3.provider.keep_reads_by_storage(deployment.addresses["HospitalRegistry"])  # type: ignore[attr-defined]
        share_reads(w3)  # N members, one chain: each view read once per block (ledger.shared)
    admin_client = LedgerClient(w3, deployment, admin)
    if demo.committee:
        set_committee_size(admin_client, demo.committee)
    settings = demo.peer_settings()
    dp = demo.dp().calibrated()  # every member has the same settings and row count: calibrate once
    make_host = host_factory(cfg.transport, cfg.peers)
    peers: list[HospitalPeer] = []
    started = time.perf_counter()
    for i, raw in enumerate(_member_data(cfg.peers, cfg.rows, cfg.seed)):
        identity = NodeIdentity.generate(f"member-{i:03d}")
        host, client, holder = join(
            w3,
            admin_client,
            identity,
            [p.ledger for p in peers],
            cohort_ceiling(len(raw)),
            make_host,
        )
        privacy = PrivacyLedger(dp, None, warn_if_off=False)
        holder.append(HospitalPeer(identity, raw, client, host, privacy, settings))
        peers.append(holder[0])
    enroll_s = time.perf_counter() - started
    for p in peers:
        p.refresh_directory()
    hosts: list[Transport] = [p.host for p in peers]
    rows: list[dict] = []
    async with trio.open_nursery() as outer:
        for h in hosts:
            await outer.start(_run_host, h)
        connect_s = await connect_hosts(hosts, seed=cfg.seed) if cfg.transport == "libp2p" else 0.0
        async with trio.open_nursery() as serving:
            for p in peers:
                await serving.start(p.serve)
            async with trio.open_nursery() as setup:
                for p in peers:
                    setup.start_soon(p.agree_standardizer)
            for p in peers:
                p.join_beacon()
            for round_ in range(1, cfg.rounds + 1):
                rows.append(await _round(w3, peers, hosts, round_))
                on_round(rows[-1], peers)
            serving.cancel_scope.cancel()
        outer.cancel_scope.cancel()
    return {
        "config": {**asdict(cfg), "json_path": None, "committee": cfg.committee or cfg.peers},
        "model": demo.model,
        "parameters": int(peers[0].global_params.size),
        "chain": cfg.rpc or "embedded",
        "enroll_s": round(enroll_s, 2),
        "connect_s": round(connect_s, 2),
        "rounds": rows,
        "all_finalized_one_hash": all(r["finalized"] and r["aggregate_hash"] for r in rows),
    }


async def _run_host(host: Transport, task_status=trio.TASK_STATUS_IGNORED) -> None:
    async with host.running():
        task_status.started()
        await trio.sleep_forever()


def _traffic(before: list[GossipStats], after: list[GossipStats]) -> dict:
    """Per-member payload bytes and messages between two snapshots of every host."""

    def per_member(field: str) -> list[int]:
        return [getattr(a, field) - getattr(b, field) for a, b in zip(after, before, strict=True)]

    sent = [
        b + c
        for b, c in zip(
            per_member("blob_bytes_sent"), per_member("control_bytes_sent"), strict=True
        )
    ]
    received = [
        b + c
        for b, c in zip(
            per_member("blob_bytes_received"), per_member("control_bytes_received"), strict=True
        )
    ]
    return {
        "bytes_sent_per_member": {"mean": statistics.fmean(sent), "max": max(sent)},
        "bytes_received_per_member": {"mean": statistics.fmean(received), "max": max(received)},
        "blobs": sum(per_member("blobs_sent")),
        "blob_bytes": sum(per_member("blob_bytes_sent")),
        "control_messages_sent": sum(per_member("control_sent")),
        "control_messages_delivered": sum(per_member("control_received")),
        "control_bytes_sent": sum(per_member("control_bytes_sent")),
        "members": [[s, r] for s, r in zip(sent, received, strict=True)],  # bytes sent, received
    }


def _by_role(members: list[list[int]], seated: list[bool]) -> dict:
    """Mean bytes sent and received by the round's committee members and by its followers
    (``None`` for a role nobody had)."""

    def mean(role: bool) -> dict | None:
        pairs = [m for m, s in zip(members, seated, strict=True) if s is role]
        if not pairs:
            return None
        return {
            "members": len(pairs),
            "sent": statistics.fmean(s for s, _ in pairs),
            "received": statistics.fmean(r for _, r in pairs),
        }

    return {"committee": mean(True), "follower": mean(False)}


def _chain_usage(w3, first_block: int) -> dict:
    """Transactions and gas of every block mined after ``first_block``."""
    txs = gas = 0
    for number in range(first_block + 1, w3.eth.block_number + 1):
        block = w3.eth.get_block(number)
        txs += len(block["transactions"])
        gas += int(block["gasUsed"])
    return {"transactions": txs, "gas": gas}


async def _round(w3, peers: list[HospitalPeer], hosts: list[Transport], round_: int) -> dict:
    before = [h.stats for h in hosts]
    first_block = w3.eth.block_number
    started = time.perf_counter()
    opened = await peers[(round_ - 1) % len(peers)].open_round()
    results: dict[str, RoundOutcome] = {}

    async def run(p: HospitalPeer) -> None:
        results[p.name] = await p.run_round(opened)

    async with trio.open_nursery() as nursery:
        for p in peers:
            nursery.start_soon(run, p)
    seconds = time.perf_counter() - started
    hashes = {o.aggregate_hash for o in results.values()}
    adopted = {parameters_hash(p.global_params).hex() for p in peers}
    traffic = _traffic(before, [h.stats for h in hosts])
    seated = [p.committee.seated(opened) for p in peers]
    return {
        "round": opened,
        "seconds": round(seconds, 2),
        "finalized": all(o.finalized for o in results.values()),
        "aggregate_hash": hashes.pop() if len(hashes) == 1 and len(adopted) == 1 else None,
        "accepted": len(next(iter(results.values())).accepted),
        "committee": sum(seated),
        "attestations": peers[0].ledger.round_info(opened).attest_count,
        "bytes_by_role": _by_role(traffic["members"], seated),
        **traffic,
        **_chain_usage(w3, first_block),
    }


def format_simulation(report: dict) -> str:
    """The table ``medmesh simulate`` prints."""
    c = report["config"]
    lines = [
        f"medmesh simulate: {c['peers']} members (committee {c['committee']}), "
        f"{report['parameters']:,} parameters, protection={c['protection']}, rule={c['rule']}, "
        f"chain={report['chain']}",
        "",
        f"{'round':>5} {'seconds':>8} {'MB sent/member':>15} {'MB recv/member':>15} "
        f"{'MB sent: committee / follower':>30} {'attest':>6} {'chain txs':>10} {'gas':>12}  final",
    ]
    for r in report["rounds"]:
        roles = r["bytes_by_role"]
        by_role = " / ".join(
            "-" if roles[role] is None else f"{roles[role]['sent'] / 1e6:.3f}"
            for role in ("committee", "follower")
        )
        lines.append(
            f"{r['round']:>5} {r['seconds']:>8.2f} {r['bytes_sent_per_member']['mean'] / 1e6:>15.3f} "
            f"{r['bytes_received_per_member']['mean'] / 1e6:>15.3f} {by_role:>30} "
            f"{r['attestations']:>6} {r['transactions']:>10} "
            f"{r['gas']:>12,}  {'yes' if r['finalized'] and r['aggregate_hash'] else 'NO'}"
        )
    lines.append(
        "all rounds finalized with one hash: "
        + ("yes" if report["all_finalized_one_hash"] else "NO")
    )
    return "\n".join(lines)


def progress_bar(cfg: SimConfig) -> OnRound:
    """A per-round progress bar on stderr (tqdm), silent when not on a terminal."""
    from tqdm import tqdm

    bar = tqdm(
        total=cfg.rounds,
        desc=f"simulating {cfg.peers} members",
        unit="round",
        file=sys.stderr,
        disable=not (cfg.progress and sys.stderr.isatty()),
    )

    def update(row: dict, _peers: list[HospitalPeer]) -> None:
        bar.set_postfix(seconds=row["seconds"], finalized=row["finalized"])
        bar.update(1)
        if bar.n == bar.total:
            bar.close()

    return update
