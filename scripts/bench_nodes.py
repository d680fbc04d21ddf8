"""Benchmark: round time and bytes for 4, 8 and 16 hospital node *processes* on this machine.

Each run starts anvil (1 s blocks plus instant mining of each transaction), deploys the
contracts, creates and registers N nodes with `medmesh node init/register`, and runs
`medmesh node run --log-json` per node until the chain's round R has ended. Every node logs
per-stage wall times with each round (``round_done``); this script reads those lines.

Per round it reports:
- wall time: first ``round_joined`` to last ``round_done`` across the nodes;
- payload bytes all nodes handed to the network (sealed blobs + control messages);
- stage times, averaged over the nodes: ``train`` (local DP-SGD) is local work; ``commit``,
  ``send``, ``record_rejections`` and ``finalize`` are network + chain (``finalize`` waits
  for the others' attestations and the quorum); ``verify`` waits for the other nodes' blobs
  and then decrypts them, so it is mostly network wait; ``protect`` and ``aggregate`` are
  local arithmetic.

    .venv/bin/python scripts/bench_nodes.py                 # 4, 8, 16 nodes, 3 rounds, mlp-wide
    .venv/bin/python scripts/bench_nodes.py --quick         # 4 nodes, 2 rounds (a check; bench_nodes_quick.json)
    .venv/bin/python scripts/bench_nodes.py --committee 4   # each round's committee of 4 (bench_nodes_committee.json)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ledger import Anvil  # noqa: E402
from ledger.audit import collect  # noqa: E402
from node.learning.models import build_model  # noqa: E402
from node.service.fsutil import atomic_write_json  # noqa: E402
from node.service.localnet import LocalNet  # noqa: E402

NETWORK_STAGES = ("commit", "hold", "send", "verify", "record_rejections", "finalize")
LOCAL_STAGES = ("train", "protect", "aggregate")


def campaign_overrides(model: str, rounds: int, round_timeout: float = 180.0) -> dict[str, dict]:
    """The node config of a benchmark campaign: ``rounds`` rounds of ``model``, then exit."""
    return {
        "training": {"model": model},
        "rounds": {
            "stop_after_round": rounds,
            "round_timeout": round_timeout,
            "setup_timeout": 900.0,
            "open_fallback": 5.0,
            "attest_grace": 5.0,
            "join_margin": 5.0,
        },
        "privacy": {"rounds": rounds},
        "gossip": {"reconnect_initial": 0.5, "reconnect_max": 5.0},
    }


def wait_campaign(net: LocalNet, timeout: float) -> str | None:
    """Wait until every node has exited; None, or the first line of why the wait ran out."""
    try:
        deadline = time.monotonic() + timeout
        for proc in net.procs.values():
            proc.wait_for(
                lambda e: e["event"] == "exited",
                max(deadline - time.monotonic(), 1),
                "the end of the campaign",
            )
    except TimeoutError as exc:  # report the rounds that did complete
        return str(exc).splitlines()[0]
    return None


def run_one(n: int, rounds: int, model: str, timeout: float, committee: int = 0) -> dict:
    started = time.perf_counter()
    with Anvil(block_time=1) as rpc:
        net = LocalNet(
            Path(tempfile.mkdtemp(prefix=f"bench-nodes-{n}-")),
            rpc,
            n,
            commit_window=300,
            attest_window=300,
            overrides=campaign_overrides(model, rounds),
            committee=committee,
        )
        net.setup()
        net.start_all()
        try:
            timed_out = wait_campaign(net, timeout)
        finally:
            net.stop_all()
        codes = {name: p.proc.returncode for name, p in net.procs.items()}
        events = {name: p.events for name, p in net.procs.items()}
        chain = chain_view(net)
    addresses = {name: ident.address.lower() for name, ident in net.identities.items()}
    summary = summarize(events, n, rounds)
    for row in summary["rounds"]:
        row.update(per_member(events, addresses, chain.get(row["round"], {}), row["round"]))
    return {
        **summary,
        "committee": committee,
        "exit_codes": codes,
        "timed_out": timed_out,
        "campaign_wall_s": round(time.perf_counter() - started, 1),
    }


def chain_view(net: LocalNet) -> dict[int, dict]:
    """Per round, from the chain alone: the seats the audit redraws (every member when the round
    had no committee) and the gas of the blocks from its opening to the next round's."""
    assert net.deployment is not None
    report = collect(net.w3, net.deployment)
    rounds = sorted(report["rounds"], key=lambda r: r["opened_block"])
    head = net.w3.eth.block_number
    view = {}
    for i, r in enumerate(rounds):
        end = rounds[i + 1]["opened_block"] if i + 1 < len(rounds) else head + 1
        gas = sum(net.w3.eth.get_block(b)["gasUsed"] for b in range(r["opened_block"], end))
        seats = (r.get("committee") or {}).get("seats") or r["members"]
        view[r["round"]] = {"seats": [a.lower() for a in seats], "gas": gas}
    return view


def per_member(
    events: dict[str, list[dict]], addresses: dict[str, str], chain: dict, round_: int
) -> dict:
    """Bytes each node sent and received in ``round_`` (its ``round_done``), split into the
    round's committee seats and the other members, and the round's gas."""
    seats = set(chain.get("seats", []))
    split: dict[str, dict[str, list[int]]] = {
        "seat": {"sent": [], "received": []},
        "follower": {"sent": [], "received": []},
    }
    for name, ev in events.items():
        for e in ev:
            if e["event"] == "round_done" and e["round"] == round_:
                role = "seat" if addresses[name] in seats else "follower"
                split[role]["sent"].append(e["bytes_sent"])
                split[role]["received"].append(e["bytes_received"])
    return {
        "gas": chain.get("gas"),
        "seats": len(seats),
        "bytes_per_member": {
            role: {k: max(v) if v else None for k, v in d.items()} for role, d in split.items()
        },
    }


def summarize(events: dict[str, list[dict]], n: int, rounds: int) -> dict:
    """Per-round wall time, bytes and mean stage times from the nodes' ``round_done`` lines."""
    per_round = []
    for r in range(1, rounds + 1):
        joined = [
            e["ts"]
            for ev in events.values()
            for e in ev
            if e["event"] == "round_joined" and e["round"] == r
        ]
        done = [
            e
            for ev in events.values()
            for e in ev
            if e["event"] == "round_done" and e["round"] == r
        ]
        if not done:
            continue
        stages = {
            s: statistics.fmean(d["stages"].get(s, 0.0) for d in done)
            for s in NETWORK_STAGES + LOCAL_STAGES
        }
        per_round.append(
            {
                "round": r,
                "nodes_done": len(done),
                "finalized": all(d["finalized"] for d in done),
                "agree": len({d["aggregate_hash"] for d in done}) == 1,
                "wall_s": round(max(d["ts"] for d in done) - min(joined), 3),
                "bytes_sent": sum(d["bytes_sent"] for d in done),
                "stages_mean_s": {k: round(v, 4) for k, v in stages.items()},
            }
        )
    if not per_round:
        return {"nodes": n, "rounds": [], "summary": {"all_finalized_and_agreed": False}}
    steady = per_round[1:] or per_round  # round 1 carries one-off warm-up (Opacus, first dials)
    total = [sum(r["stages_mean_s"].values()) for r in steady]
    net_s = [sum(r["stages_mean_s"][s] for s in NETWORK_STAGES) for r in steady]
    train_s = [r["stages_mean_s"]["train"] for r in steady]
    return {
        "nodes": n,
        "rounds": per_round,
        "summary": {
            "round_wall_s_mean": round(statistics.fmean(r["wall_s"] for r in steady), 3),
            "bytes_per_round_mean": round(statistics.fmean(r["bytes_sent"] for r in steady)),
            "train_s_mean": round(statistics.fmean(train_s), 3),
            "network_chain_s_mean": round(statistics.fmean(net_s), 3),
            "network_chain_share": round(
                statistics.fmean(a / t for a, t in zip(net_s, total, strict=False)), 3
            ),
            "train_share": round(
                statistics.fmean(a / t for a, t in zip(train_s, total, strict=False)), 3
            ),
            "network_chain_over_train": round(
                statistics.fmean(net_s) / statistics.fmean(train_s), 2
            ),
            "all_finalized_and_agreed": len(per_round) == rounds
            and all(r["finalized"] and r["agree"] and r["nodes_done"] == n for r in per_round),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="mlp-wide")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per campaign")
    parser.add_argument(
        "--committee",
        type=int,
        default=0,
        help="committee size k (0: every member attests; docs/committee.md)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="4 nodes, 2 rounds, results in bench_nodes_quick.json"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="default benchmarks/results/bench_nodes.json (bench_nodes_committee.json with --committee)",
    )
    args = parser.parse_args(argv)
    if args.out is None:
        name = "bench_nodes_committee.json" if args.committee else "bench_nodes.json"
        args.out = REPO / "benchmarks" / "results" / name
    if args.quick:
        args.nodes, args.rounds = [4], 2
    params = int(sum(t.numel() for t in build_model(args.model, 30).state_dict().values()))
    runs = []
    for n in args.nodes:
        print(
            f"{n} node processes, {args.rounds} rounds, {args.model} ({params:,} parameters) ...",
            flush=True,
        )
        run = run_one(n, args.rounds, args.model, args.timeout, min(args.committee, n))
        print(json.dumps(run["summary"]), flush=True)
        runs.append(run)
        _write(args, params, runs)
    return 0 if all(r["summary"]["all_finalized_and_agreed"] for r in runs) else 1


def _write(args: argparse.Namespace, params: int, runs: list[dict]) -> None:
    """Write the results so far (after each campaign, so a long run leaves partial results)."""
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "model": args.model,
        "parameters": params,
        "rounds": args.rounds,
        "notes": "wall time per round: first round_joined to last round_done; bytes: payload all nodes sent "
        "(blobs + control); stage times are per-node means over rounds 2..R; bytes_per_member: the "
        "largest a seat / a follower sent and received in the round (seats redrawn by the audit); "
        "gas: the blocks from the round's opening to the next's",
        "committee": args.committee,
        "runs": runs,
    }
    out = args.out.with_name("bench_nodes_quick.json") if args.quick else args.out
    atomic_write_json(out, report)
    print(f"written {out}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
