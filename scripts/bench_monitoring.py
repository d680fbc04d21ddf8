#!/usr/bin/env python3
"""Overhead of a node's monitoring (issue 21): round time with ``[monitoring]`` on and off.

1. **End to end**: a 4-node LocalNet on anvil runs ``--rounds`` rounds with monitoring enabled
   while a scraper reads every node's ``/metrics`` and ``/status.json`` once a second (15x the
   usual Prometheus scrape rate), then a fresh LocalNet runs the same with monitoring disabled.
   Reported: the median ``round_done.seconds`` over rounds 2..N of all nodes, each way.
2. **In process**: the monitor's own work per round (the ``round_done`` handler: counters, a
   validation pass of the global model, the alert rules) and per scrape (``generate_latest``),
   timed over many repetitions on a breast-cancer site, as a share of the median round. The
   rounds' history fills up to the Monitor's 50 kept rounds, so the accuracy-drop rule's
   comparisons with every earlier round are timed at their most; one untimed round first pays
   the one-off costs (importing the evaluation code, copying the model).

    .venv/bin/python scripts/bench_monitoring.py --json benchmarks/results/bench_monitoring.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

OVERRIDES = {
    "rounds": {
        "round_timeout": 5.0,
        "open_fallback": 1.5,
        "attest_grace": 5.0,
        "poll_interval": 0.25,
        "join_margin": 3.0,
    },
    "privacy": {"rounds": 40},
    "gossip": {"reconnect_initial": 0.25, "reconnect_max": 2.0},
}


def campaign(rounds: int, monitoring: bool, interval: float = 1.0) -> dict:
    from ledger import Anvil
    from node.service.localnet import LocalNet

    overrides = {**OVERRIDES, "monitoring": {"enabled": monitoring}}
    with tempfile.TemporaryDirectory() as tmp, Anvil(block_time=1) as rpc:
        net = LocalNet(Path(tmp), rpc, 4, commit_window=20, attest_window=20, overrides=overrides)
        net.setup()
        net.start_all()
        stop, scrapes = threading.Event(), []
        try:
            urls = []
            if monitoring:
                urls = [
                    p.wait_for(lambda e: e["event"] == "monitoring", 120, "monitoring")["url"]
                    for p in net.procs.values()
                ]

            def scraper() -> None:
                while not stop.wait(interval):
                    for url in urls:
                        for path in ("/metrics", "/status.json"):
                            with urllib.request.urlopen(url + path, timeout=10) as res:
                                res.read()
                            scrapes.append(path)

            thread = threading.Thread(target=scraper, daemon=True)
            thread.start()
            seconds = []
            for proc in net.procs.values():
                proc.wait_for(
                    lambda e: e["event"] == "round_done" and e["round"] == rounds,
                    60 + 30 * rounds,
                    f"round {rounds}",
                )
                seconds += [
                    e["seconds"]
                    for e in proc.find(
                        lambda e: (
                            e["event"] == "round_done"
                            and 2 <= e["round"] <= rounds
                            and e["finalized"]
                        )
                    )
                ]
            stop.set()
            thread.join(15)
        finally:
            net.stop_all()
    return {
        "monitoring": monitoring,
        "rounds": rounds,
        "round_seconds_median": statistics.median(seconds),
        "round_seconds_mean": statistics.fmean(seconds),
        "samples": len(seconds),
        "scrapes": len(scrapes),
        "scrape_interval_s": interval if monitoring else None,
    }


def in_process(repeats: int) -> dict:
    import numpy as np
    from prometheus_client import generate_latest

    from node.data.samples import Standardizer, breast_cancer_split
    from node.learning.models import build_model, flat_parameters
    from node.service.config import DataSection
    from node.service.metrics import Monitor, validation_split

    site = breast_cancer_split(4, seed=0).hospitals
    data = list(site.values())[0]
    std = Standardizer.fit(data)
    model = build_model("logreg", data.n_features, seed=0)
    monitor = Monitor("hospital-a", epsilon_budget=1.0)
    monitor.peer = SimpleNamespace(
        data=std.apply(data), standardizer=std, model=model, global_params=flat_parameters(model)
    )
    monitor.watch.validation = validation_split(DataSection(site=0, sites=4))
    fields = dict(
        finalized=True,
        accepted=["a", "b", "c", "d"],
        rejected={},
        epsilon=0.1,
        seconds=1.0,
        stages={"train": 0.1, "verify": 0.1, "aggregate": 0.01, "finalize": 0.2},
    )
    rng = np.random.default_rng(0)
    opened = {
        s: SimpleNamespace(delta=rng.normal(size=monitor.peer.global_params.size)) for s in "abcd"
    }
    monitor.on_event(
        "round_done", 0, fields
    )  # untimed: the first round imports the evaluation code, copies the model
    start = time.perf_counter()
    for r in range(repeats):
        monitor.check_updates(r, opened, opened["a"].delta)
        monitor.on_event("round_done", r, fields)
    per_round = (time.perf_counter() - start) / repeats
    start = time.perf_counter()
    for _ in range(repeats):
        generate_latest(monitor.registry)
    per_scrape = (time.perf_counter() - start) / repeats
    return {
        "per_round_handler_s": per_round,
        "per_scrape_s": per_scrape,
        "repeats": repeats,
        "model": "logreg",
        "validation_rows": len(monitor.watch.validation),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--scrape-interval", type=float, default=1.0)
    ap.add_argument(
        "--pairs", type=int, default=1, help="off/on campaign pairs, alternating which goes first"
    )
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    micro = in_process(args.repeats)
    runs = []
    for i in range(
        args.pairs
    ):  # alternate the order: a machine that slows down over time biases neither
        order = (True, False) if i % 2 == 0 else (False, True)
        runs += [campaign(args.rounds, on, args.scrape_interval) for on in order]

    def med(on: bool) -> float:
        return statistics.median(r["round_seconds_median"] for r in runs if r["monitoring"] == on)

    base = med(False)
    result = {
        "end_to_end": {
            "runs": runs,
            "on_median_s": med(True),
            "off_median_s": base,
            "overhead_median_pct": round(100 * (med(True) - base) / base, 2),
        },
        "in_process": {
            **micro,
            "handler_share_of_round_pct": round(100 * micro["per_round_handler_s"] / base, 3),
            "scrape_cpu_share_pct": round(
                100 * 2 * micro["per_scrape_s"] / args.scrape_interval, 3
            ),
        },
        "command": "scripts/bench_monitoring.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
