#!/usr/bin/env python3
"""What a medmesh round costs (issue 9, part 2): wall time split into training, protection,
network and chain, and bytes per peer, each against a bare FedAvg loop in the same run.

- medmesh: the demo campaign (:func:`node.sim.demo.run_demo`: embedded py-evm chain, one libp2p
  host per hospital on 127.0.0.1, DP-SGD, the protection mode, consensus on the aggregate), with
  every peer's stages, protection calls and chain calls timed by :mod:`node.monitoring.stagetimes`
  (exclusive times: a chain call inside a stage counts as chain only). Per peer and round:
  *training* (``_train``), *protection* (protect / open / aggregate: sealing, masking,
  encrypting, decrypting, the rule), *network* (``_send``, and ``_verify`` waiting for the
  others' blobs), *chain* (every transaction and call, plus the stage code around them),
  *quorum wait* (``_finalize`` waiting for the others' attestations) and *other* (the rest of
  the round's wall time: the opener's chain calls, evaluation, the event loop serving the
  other peers). All hospitals share one process and one event loop, so a chain call (py-evm
  runs in the loop's thread) stalls every peer: the chain's wall share is the sum over peers.
- bare FedAvg: :func:`node.sim.simulation.run_campaign` on the same split, model, z-scoring and
  DP schedule: local training at each site, one after another, and a weighted average — the
  floor. Bytes floor: one float32 update per peer per round (``4 * parameters``).

    .venv/bin/python scripts/bench_cost.py                 # logreg x {sealed, secagg, ckks}, mlp-wide sealed
    .venv/bin/python scripts/bench_cost.py --quick         # logreg sealed, 3 rounds

Writes ``benchmarks/results/bench_cost.json`` (``bench_cost_quick.json``) with the command and the machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(
    0, str(Path(__file__).resolve().parents[1])
)  # this checkout's node/, not an installed one

from node.data.samples import FeatureStats, Standardizer, breast_cancer_split  # noqa: E402
from node.monitoring.stagetimes import StageTotals  # noqa: E402
from node.peer.pipeline import HospitalPeer  # noqa: E402
from node.sim.demo import DemoConfig, run_demo  # noqa: E402
from node.sim.simulation import run_campaign  # noqa: E402

CATEGORY = {
    "train": "training",
    "protect": "protection",
    "open": "protection",
    "aggregate": "protection",
    "check": "protection",
    "hold": "network",
    "send": "network",
    "verify": "network",
    "chain.send": "chain",
    "chain.call": "chain",
    "commit": "chain",
    "record_rejections": "chain",
    "directory": "chain",
    "finalize": "quorum wait",
}
CATEGORIES = ("training", "protection", "network", "chain", "quorum wait", "other")


def timed_peer_class(clocks: list[StageTotals]) -> type[HospitalPeer]:
    """Peers whose stage clock (node.monitoring.stagetimes) reports exclusive seconds into ``clocks``."""

    class TimedPeer(HospitalPeer):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            totals = StageTotals(exclusive=True)
            clocks.append(totals)
            self.clock.subscribe(totals)

    return TimedPeer


def medmesh_cost(cfg: DemoConfig) -> dict:
    clocks: list[StageTotals] = []
    started = time.perf_counter()
    report = run_demo(cfg, peer_class=timed_peer_class(clocks))
    rows = report["rounds"]
    per_round = statistics.fmean(r["seconds"] for r in rows)
    peers = []
    for clock in clocks:
        split = dict.fromkeys(CATEGORIES, 0.0)
        for name, secs in clock.seconds.items():
            split[CATEGORY[name]] += secs / len(rows)
        split["other"] = max(per_round - sum(split.values()), 0.0)
        peers.append(split)
    mean = {c: round(statistics.fmean(p[c] for p in peers), 4) for c in CATEGORIES}
    chain_all = sum(p["chain"] for p in peers)
    blob = statistics.fmean(b for r in rows for b in r["blob_bytes_per_peer"].values())
    total = statistics.fmean(r["bytes_sent"] for r in rows) / cfg.hospitals
    return {
        "protection": cfg.protection,
        "topk": cfg.topk,
        "model": cfg.model,
        "parameters": report["config"]["parameters"],
        "rounds": len(rows),
        "all_finalized": all(r["finalized"] for r in rows),
        "final_auc": rows[-1]["auc"],
        "seconds_per_round": round(per_round, 4),
        "seconds_per_round_each": [r["seconds"] for r in rows],
        "split_per_peer_mean": mean,
        "chain_seconds_all_peers": round(chain_all, 4),
        "stage_seconds_per_round": {
            k: round(statistics.fmean(c.seconds.get(k, 0.0) for c in clocks) / len(rows), 4)
            for k in CATEGORY
        },
        "blob_bytes_per_peer": round(blob),
        "bytes_per_peer": round(total),
        "campaign_seconds": round(time.perf_counter() - started, 2),
    }


def bare_cost(cfg: DemoConfig) -> dict:
    """The floor: the same sites, model and DP schedule, local training then a weighted average."""
    split = breast_cancer_split(cfg.hospitals, seed=cfg.seed)
    stats = [FeatureStats.of(d) for d in split.hospitals.values()]
    z = Standardizer.from_stats(sum(stats[1:], stats[0]))
    sites = [z.apply(d) for d in split.hospitals.values()]
    t = time.perf_counter()
    run = run_campaign(cfg.model, sites, cfg.dp(), learning_rate=cfg.learning_rate, seed=cfg.seed)
    secs = (time.perf_counter() - t) / cfg.rounds
    return {"seconds_per_round": round(secs, 4), "bytes_per_peer": 4 * int(run.params.size)}


def measure(cfg: DemoConfig) -> dict:
    med, bare = medmesh_cost(cfg), bare_cost(cfg)
    med["bare_fedavg"] = bare
    med["ratio"] = {
        "time_per_round": round(med["seconds_per_round"] / bare["seconds_per_round"], 1),
        "training_over_bare_round": round(
            med["split_per_peer_mean"]["training"] / bare["seconds_per_round"], 2
        ),
        "bytes_per_peer": round(med["bytes_per_peer"] / bare["bytes_per_peer"], 2),
    }
    s = med["split_per_peer_mean"]
    print(
        f"  {cfg.model:<9}{cfg.protection:<7}{med['seconds_per_round']:>7.2f} s/round "
        f"(bare {bare['seconds_per_round']:.3f}, "
        f"x{med['ratio']['time_per_round']}) "
        + " ".join(f"{k} {v:.2f}" for k, v in s.items())
        + f"; {med['bytes_per_peer']:,} B/peer (x{med['ratio']['bytes_per_peer']})",
        flush=True,
    )
    return med


def configs(quick: bool, rounds: int | None) -> list[DemoConfig]:
    base = dict(hospitals=4, rule="fedavg", progress=False)
    if quick:
        return [DemoConfig(rounds=rounds or 3, protection="sealed", **base)]
    r = rounds or 5
    return [
        DemoConfig(rounds=r, protection="sealed", **base),
        DemoConfig(rounds=r, protection="secagg", **base),
        DemoConfig(rounds=r, protection="ckks", **base),
        DemoConfig(rounds=r, protection="sealed", model="mlp-wide", learning_rate=0.1, **base),
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="logreg, sealed, 3 rounds")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    started = time.perf_counter()
    print(
        "cost per round: medmesh demo (4 hospitals, breast cancer, fedavg) vs a bare FedAvg loop",
        flush=True,
    )
    runs = [measure(cfg) for cfg in configs(args.quick, args.rounds)]
    out = {
        "command": " ".join(shlex.quote(a) for a in [os.path.relpath(sys.executable), *sys.argv]),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "categories": CATEGORIES,
        "stage_categories": CATEGORY,
        "runs": runs,
        "seconds": round(time.perf_counter() - started, 1),
    }
    path = args.out or Path(__file__).resolve().parents[1] / "benchmarks" / "results" / (
        "bench_cost" + ("_quick" if args.quick else "") + ".json"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"total {out['seconds']} s; wrote {path}")


if __name__ == "__main__":
    main()
