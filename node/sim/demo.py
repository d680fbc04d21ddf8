"""`medmesh demo`: a real federated campaign among hospital peers in one process.

Every layer is the real one: a chain running the compiled contracts (embedded py-evm by
default, any JSON-RPC endpoint with ``--rpc``), one libp2p host per hospital on 127.0.0.1
(Noise, GossipSub, direct streams), Opacus DP-SGD, sealed and signed updates, a robust
aggregation rule, on-chain attestations, quorum finalization and credits.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import trio

from gossip import PeerHost, Transport
from ledger import LedgerClient, connect, deploy, dev_account, fund, save_state
from ledger.anchors import write_record
from ledger.committee import set_committee_size
from node.consensus.update import parameters_hash
from node.data.datasets import synthetic_imaging_split
from node.data.samples import HospitalSplit, LabelledData, Standardizer, breast_cancer_split
from node.learning.evaluation import Scores, centralized_baseline, evaluate, local_only_baseline
from node.learning.models import model_input
from node.learning.privacy import PrivacyLedger, cohort_ceiling
from node.peer.identity import NodeIdentity
from node.peer.mods import PeerMod
from node.peer.pipeline import HospitalPeer, RoundOutcome
from node.service.fsutil import atomic_write_json
from node.sim.democonfig import DEMO_DATA, DemoConfig  # noqa: F401 - re-exported: the demo's options
from node.sim.demoreport import Progress, format_report, max_epsilon, round_epsilons

__all__ = ["DemoConfig", "run_demo", "format_report", "max_epsilon", "enroll", "join"]

log = logging.getLogger("medmesh.demo")
HostT = TypeVar("HostT", bound=Transport)


@dataclass
class _Hospital:
    identity: NodeIdentity
    raw: LabelledData
    client: LedgerClient
    host: PeerHost
    peer: HospitalPeer

    @property
    def data(self) -> LabelledData:
        """The rows the peer trains on: set once the consortium agreed on the standardizer."""
        if self.peer.data is None:
            raise RuntimeError(f"{self.identity.institution}: no training data before set-up")
        return self.peer.data


def run_demo(
    cfg: DemoConfig,
    *,
    peer_class: type[HospitalPeer] | dict[int, type[HospitalPeer]] = HospitalPeer,
    mods: Mapping[int, Sequence[PeerMod]] | Sequence[PeerMod] = (),
) -> dict:
    """Run the whole campaign; returns the report (also written to ``cfg.json_path``).

    ``mods`` (:mod:`node.peer.mods`) maps hospital indices to the hooks their peers run, or gives
    hooks every peer runs: tests and benchmarks use them to plant misbehaving peers
    (equivocators, attackers) among honest ones and to watch rounds. ``peer_class`` may map
    hospital indices to :class:`HospitalPeer` subclasses (a peer that changes public methods).
    """
    state_dir = Path(cfg.state_dir or tempfile.mkdtemp(prefix="medmesh-demo-"))
    classes = peer_class if isinstance(peer_class, dict) else {}
    default = HospitalPeer if isinstance(peer_class, dict) else peer_class
    hooks = (
        (lambda i: list(mods.get(i, ()))) if isinstance(mods, Mapping) else (lambda i: list(mods))
    )
    report = trio.run(_campaign, cfg, state_dir, lambda i: classes.get(i, default), hooks)
    if cfg.json_path:
        atomic_write_json(cfg.json_path, report)
    return report


def _exact_zscore_baseline(
    cfg: DemoConfig, split: HospitalSplit, hospitals: list[_Hospital]
) -> dict | None:
    """Centralized, on the pooled raw rows z-scored with their exact mean and std: the reference
    that shows what the consortium's scaling costs (None for images, which need no scaling)."""
    if hospitals[0].peer.standardizer is None:
        return None
    raw = type(hospitals[0].raw).concat([h.raw for h in hospitals])
    z = Standardizer.fit(raw)
    return centralized_baseline(
        cfg.model, z.apply(raw), z.apply(split.test), seed=cfg.seed
    ).to_json()


def _split(cfg: DemoConfig) -> HospitalSplit:
    if cfg.data == "synthetic-imaging":
        return synthetic_imaging_split(cfg.hospitals, size=32, seed=cfg.seed)
    return breast_cancer_split(cfg.hospitals, seed=cfg.seed)


async def _campaign(cfg: DemoConfig, state_dir: Path, peer_class, hooks) -> dict:
    split = _split(cfg)
    w3 = connect(cfg.rpc)
    admin = dev_account(w3)
    deployment = deploy(w3, admin, commit_window=cfg.commit_window, attest_window=cfg.attest_window)
    admin_client = LedgerClient(w3, deployment, admin)
    if cfg.committee:
        set_committee_size(admin_client, cfg.committee)
    settings = cfg.peer_settings()

    hospitals: list[_Hospital] = []
    for name, raw in split.hospitals.items():
        identity = NodeIdentity.generate(name)
        host, client, holder = join(
            w3,
            admin_client,
            identity,
            [h.client for h in hospitals],
            cohort_ceiling(len(raw)),
            lambda seed, gate: PeerHost(seed, authorize=gate, members=cfg.hospitals),
        )
        privacy = PrivacyLedger(cfg.dp(), state_dir / f"{name}.privacy.json")
        peer = peer_class(len(hospitals))(
            identity, raw, client, host, privacy, settings, mods=hooks(len(hospitals))
        )
        holder.append(peer)
        hospitals.append(_Hospital(identity, raw, client, host, peer))
    for h in hospitals:
        h.peer.refresh_directory()

    rows: list[dict] = []
    async with AsyncExitStack() as stack:
        for h in hospitals:
            await stack.enter_async_context(h.host.running())
        for i, h in enumerate(hospitals):
            for other in hospitals[:i]:
                await h.host.connect(other.host.listen_addrs[0])
        nursery = await stack.enter_async_context(trio.open_nursery())
        for h in hospitals:
            await nursery.start(h.peer.serve)
        async with trio.open_nursery() as setup:
            for h in hospitals:
                setup.start_soon(h.peer.agree_standardizer)
        z = hospitals[0].peer.standardizer  # None for images: pixels are already in [0, 1]
        test = z.apply(split.test) if z is not None else model_input(cfg.model, split.test)

        for h in hospitals:
            h.peer.join_beacon()  # a secret for round 1, committed before anyone can open it
        progress = Progress(cfg)
        for round_ in range(1, cfg.rounds + 1):
            started = time.perf_counter()
            sent_before = _bytes_sent(hospitals)
            blobs_before = {h.identity.institution: h.host.stats.blob_bytes_sent for h in hospitals}
            opener = hospitals[(round_ - 1) % len(hospitals)].peer
            opened = await opener.open_round()
            results: dict[str, RoundOutcome] = {}

            async def run(h: _Hospital) -> None:
                results[h.identity.institution] = await h.peer.run_round(opened)  # noqa: B023 (awaited in this iteration)

            async with trio.open_nursery() as round_nursery:
                for h in hospitals:
                    round_nursery.start_soon(run, h)
            rows.append(
                _round_row(
                    opened,
                    hospitals,
                    results,
                    test,
                    _bytes_sent(hospitals) - sent_before,
                    time.perf_counter() - started,
                )
            )
            rows[-1]["blob_bytes_per_peer"] = {
                h.identity.institution: h.host.stats.blob_bytes_sent
                - blobs_before[h.identity.institution]
                for h in hospitals
            }
            if cfg.chain_state and cfg.rpc is None:
                save_state(w3, cfg.chain_state, deployment)
                _save_attestation_records(Path(cfg.chain_state), hospitals)
            progress.update(rows[-1])
        progress.close()
        nursery.cancel_scope.cancel()

    peers_agree = len({parameters_hash(h.peer.global_params) for h in hospitals}) == 1
    if cfg.model_out:
        Path(cfg.model_out).parent.mkdir(parents=True, exist_ok=True)
        np.save(cfg.model_out, hospitals[0].peer.global_params)
    pooled = type(hospitals[0].data).concat([h.data for h in hospitals])
    dp = cfg.dp()
    baselines = {
        "centralized": centralized_baseline(cfg.model, pooled, test, seed=cfg.seed).to_json(),
        "centralized_exact_zscore": _exact_zscore_baseline(cfg, split, hospitals),
        "local_only": {
            h.identity.institution: local_only_baseline(
                cfg.model, h.data, test, dp, settings.train, cfg.rounds
            ).to_json()
            for h in hospitals
        },
        "local_only_note": "each hospital alone, same DP budget and steps as in the federation",
    }
    return {
        "config": {
            "rounds": cfg.rounds,
            "hospitals": cfg.hospitals,
            "epsilon": cfg.epsilon,
            "delta": cfg.delta,
            "rule": cfg.rule,
            "model": cfg.model,
            "data": cfg.data,
            "seed": cfg.seed,
            "protection": cfg.protection,
            "topk": cfg.topk,
            "quantize": cfg.quantize,
            "clip_norm": cfg.clip_norm,
            "norm_bound": cfg.norm_bound,
            "parameters": int(hospitals[0].peer.global_params.size),
            "accountant": cfg.accountant,
            "noise_multiplier": hospitals[0].peer.privacy.config.noise_multiplier,
        },
        "hospitals": {
            h.identity.institution: {
                "address": h.identity.address,
                "peer_id": h.host.peer_id,
                "samples": len(h.raw),
                "positives": h.raw.positives(),
                "published_samples": h.peer.privacy.released_count,
                "credits": h.client.credit_balance(h.identity.address) / 1e18,
            }
            for h in hospitals
        },
        "rounds": rows,
        "baselines": baselines,
        "peers_agree": peers_agree,
        "chain": {
            "rpc": cfg.rpc or "embedded",
            "chain_id": deployment.chain_id,
            "contracts": dict(deployment.addresses),
            "deployment": deployment.to_dict(),
            "chain_state": str(cfg.chain_state) if cfg.chain_state else None,
        },
    }


def join(
    w3,
    admin_client: LedgerClient,
    identity: NodeIdentity,
    members: list[LedgerClient],
    cohort: int,
    make_host: Callable[[bytes, Callable[[str], bool]], HostT],
) -> tuple[HostT, LedgerClient, list[HospitalPeer]]:
    """Fund ``identity``, give it a host (``make_host(libp2p_seed, authorize)``) and
    :func:`enroll` it. The host's gate asks the peer that the caller appends to the returned
    holder, once it exists (a peer needs its host, a host its gate)."""
    fund(w3, identity.address, 10**18)
    holder: list[HospitalPeer] = []

    def authorize(peer_id: str) -> bool:
        return bool(holder) and holder[0].authorize(peer_id)

    host = make_host(identity.libp2p_seed, authorize)
    client = enroll(w3, admin_client, identity, host.peer_id, members, cohort)
    return host, client, holder


def enroll(
    w3,
    admin_client: LedgerClient,
    identity: NodeIdentity,
    peer_id: str,
    members: list[LedgerClient],
    cohort: int,
) -> LedgerClient:
    """Register a funded hospital with its ``cohort`` (the patients it trains on: no commit
    may claim more samples) and get it admitted: by the consortium admin while genesis is
    open, later endorsed by a quorum of ``members`` first. Returns its ledger client."""
    client = LedgerClient(w3, admin_client.deployment, identity.account)
    client.register(
        identity.institution_id, peer_id, identity.seal_public, identity.sign_public, cohort
    )
    if admin_client.genesis_open():
        admin_client.admit(identity.address)
    else:
        for member in members[: admin_client.endorsements_needed()]:
            member.endorse(identity.address)
        client.admit(identity.address)
    return client


def _bytes_sent(hospitals: list[_Hospital]) -> int:
    """Payload bytes all hosts handed to the network (blobs + control messages)."""
    return sum(h.host.stats.blob_bytes_sent + h.host.stats.control_bytes_sent for h in hospitals)


def records_dir(chain_state: Path) -> Path:
    """Where the demo keeps the members' signed attestations beside a chain-state file."""
    return chain_state.with_suffix(".records")


def _save_attestation_records(chain_state: Path, hospitals: list[_Hospital]) -> None:
    """Each member's signed attest transactions, one record file per member and round: what
    an auditor gives ``medmesh audit --expect-head`` (see ledger.anchors)."""
    out = records_dir(chain_state)
    for h in hospitals:
        name = "".join(c if c.isalnum() else "-" for c in h.identity.institution).strip("-").lower()
        for rnd, raw in h.peer.ledger.attestation_records.items():
            path = out / f"{name}-round-{rnd}.json"
            if not path.exists():
                write_record(path, raw)


def _round_row(
    round_: int,
    hospitals: list[_Hospital],
    results: dict[str, RoundOutcome],
    test: LabelledData,
    bytes_sent: int,
    seconds: float,
) -> dict:
    scores: Scores = evaluate(hospitals[0].peer.model, test)
    hashes = {o.aggregate_hash for o in results.values()}
    accepted = {a.lower() for o in results.values() if o.finalized for a in o.accepted}
    return {
        "round": round_,
        "auc": round(scores.auc, 4),
        "accuracy": round(scores.accuracy, 4),
        "epsilon": round_epsilons(results),
        "bytes_sent": bytes_sent,
        "finalized": all(o.finalized for o in results.values()),
        "aggregate_hash": hashes.pop() if len(hashes) == 1 else None,
        "accepted": len(next(iter(results.values())).accepted),
        "rejected": {name: o.rejected for name, o in results.items() if o.rejected},
        "left_out": [
            h.identity.institution
            for h in hospitals
            if accepted and h.peer.address.lower() not in accepted
        ],
        "seconds": round(seconds, 2),
    }
