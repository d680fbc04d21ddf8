#!/usr/bin/env python3
"""The Flower half of scripts/bench_flower.py; runs inside build/flower-venv (flwr 1.41.0).

A real Flower deployment in one process, as the medmesh demo is one: ``flwr.server.start_server``
on 127.0.0.1 (gRPC) with ``FedAvg`` or ``Krum``, and one ``flwr.client.start_client`` thread per
hospital. Each client trains exactly as a medmesh peer does: the same breast-cancer split,
the same federated z-scorer (the sum of every hospital's feature statistics), the same
logreg, and :func:`node.learning.training.train_local` with the demo's DP-SGD schedule and accountant.
The server evaluates the global model on the held-out rows after every round; the time per
round is the gap between those evaluations. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import threading
import time

import flwr
import numpy as np
from flwr.client import NumPyClient, start_client
from flwr.server import ServerConfig, start_server
from flwr.server.strategy import FedAvg, Krum

from node.data.samples import FeatureStats, Standardizer, breast_cancer_split
from node.learning.evaluation import evaluate
from node.learning.models import build_model, flat_parameters, load_flat_parameters
from node.learning.privacy import PrivacyLedger
from node.learning.training import TrainConfig, train_local
from node.sim.demo import DemoConfig


class Hospital(NumPyClient):
    def __init__(self, data, cfg: DemoConfig) -> None:
        self.data, self.cfg = data, cfg
        self.ledger = PrivacyLedger(cfg.dp())
        self.model = build_model(cfg.model, data.x.shape[1], seed=cfg.seed)

    def fit(self, parameters, config):
        start = parameters[0].astype(np.float32)
        result = train_local(
            self.model,
            start,
            self.data,
            self.ledger,
            TrainConfig(self.cfg.learning_rate, self.cfg.seed),
        )
        return [start + result.delta], len(self.data), {"epsilon": result.epsilon}


def start_when_listening(port: int, clients: list[threading.Thread], timeout: float = 60.0) -> None:
    """Start the clients once the server accepts connections (the legacy gRPC client gives up
    on a refused connection instead of retrying)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            break
        except OSError:
            time.sleep(0.05)
    for c in clients:
        c.start()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rule", choices=("fedavg", "krum"), required=True)
    p.add_argument("--hospitals", type=int, default=5)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    logging.disable(logging.WARNING)
    cfg = DemoConfig(hospitals=args.hospitals, rounds=args.rounds, rule=args.rule, seed=args.seed)
    split = breast_cancer_split(args.hospitals, seed=args.seed)
    raw = list(split.hospitals.values())
    stats = [FeatureStats.of(d) for d in raw]
    z = Standardizer.from_stats(sum(stats[1:], stats[0]))
    test = z.apply(split.test)
    model = build_model(cfg.model, raw[0].x.shape[1], seed=cfg.seed)
    marks: list[float] = []
    history: list[dict] = []

    def evaluate_fn(server_round, parameters, config):
        load_flat_parameters(model, parameters[0].astype(np.float32))
        s = evaluate(model, test)
        marks.append(time.perf_counter())
        history.append(
            {"round": server_round, "accuracy": round(s.accuracy, 4), "auc": round(s.auc, 4)}
        )
        return 0.0, {}

    init = flwr.common.ndarrays_to_parameters([flat_parameters(model)])
    common = dict(
        fraction_fit=1.0,
        fraction_evaluate=0.0,
        min_fit_clients=args.hospitals,
        min_available_clients=args.hospitals,
        evaluate_fn=evaluate_fn,
        initial_parameters=init,
    )
    strategy = (
        FedAvg(**common) if args.rule == "fedavg" else Krum(num_malicious_clients=1, **common)
    )
    address = f"127.0.0.1:{args.port}"
    clients = [
        threading.Thread(
            target=start_client,
            daemon=True,
            kwargs={
                "server_address": address,
                "client": Hospital(z.apply(d), cfg).to_client(),
                "max_retries": 50,
                "max_wait_time": 30.0,
            },
        )
        for d in raw
    ]
    threading.Thread(target=start_when_listening, args=(args.port, clients), daemon=True).start()
    started = time.perf_counter()
    start_server(
        server_address=address, config=ServerConfig(num_rounds=args.rounds), strategy=strategy
    )
    total = time.perf_counter() - started
    per_round = [round(b - a, 3) for a, b in zip(marks, marks[1:], strict=False)]
    print(
        json.dumps(
            {
                "system": "flower",
                "flwr": flwr.__version__,
                "rule": args.rule,
                "hospitals": args.hospitals,
                "rounds": history[1:],
                "seconds_per_round": per_round,
                "seconds_total": round(total, 2),
                "final_accuracy": history[-1]["accuracy"],
                "final_auc": history[-1]["auc"],
            }
        ),
        flush=True,
    )
    os._exit(
        0
    )  # the clients' daemon gRPC threads can abort a normal interpreter exit ("terminate called...")


if __name__ == "__main__":
    main()
