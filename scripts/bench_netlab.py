"""Benchmark: round time and bytes against link bandwidth and RTT, hospitals in network namespaces.

Each campaign builds the network lab of tests/netlab (one namespace per hospital and one for
anvil, joined through a bridge; ``tbf`` on every access link both ways, the RTT from a user-space
delay relay that every peer-to-peer byte crosses, no loss), runs ``medmesh node run`` per
hospital with the 1M-parameter ``mlp-wide`` model (sealed updates, the default robust rule)
until the chain's round R has ended, and reads the nodes' ``round_done`` lines
(scripts/bench_nodes.py ``summarize``: wall time first join to last done, payload bytes sent by
all nodes, stage means over rounds 2..R).

The grid: bandwidth 1000 / 100 / 10 Mbit/s at 50 ms RTT, and RTT 1 / 50 / 200 ms at 100 Mbit/s.
Needs root (namespaces), like the lab's tests. The relay is Python: at 1000 Mbit/s it, not the
link, can be the bottleneck on a small machine (the JSON records the machine).

    .venv/bin/python scripts/bench_netlab.py                   # 4 hospitals, 3 rounds, the grid
    .venv/bin/python scripts/bench_netlab.py --nodes 4 8       # also 8 hospitals
    .venv/bin/python scripts/bench_netlab.py --nodes 8 --committee 0 4 --points 100/50

``--committee`` runs each point with an aggregation committee of k (docs/committee.md; 0: every
member). ``--points`` picks grid points. Rows are merged into ``--out`` by (nodes, committee,
Mbit/s, RTT): a point run again replaces its row, other rows stay. Each row records the command
and the load average before and after it (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "scripts")]

from bench_nodes import campaign_overrides, summarize, wait_campaign  # noqa: E402
from netlab.consortium import running_lab  # noqa: E402
from netlab.lab import Lab, LinkSpec  # noqa: E402

from node.learning.models import build_model  # noqa: E402
from node.service.fsutil import atomic_write_json  # noqa: E402

BOTH_ENDS = "both ends' links"
GRID = [(1000, 50), (100, 50), (10, 50), (100, 1), (100, 200)]  # (Mbit/s, RTT ms)


def _point(text: str) -> tuple[float, float]:
    mbit, _, rtt = text.partition("/")
    return float(mbit), float(rtt)


def run_one(
    n: int, committee: int, mbit: float, rtt_ms: float, rounds: int, model: str, timeout: float
) -> dict:
    started = time.perf_counter()
    load_before = os.getloadavg()
    with Lab(n, rtt_ms=rtt_ms, link=LinkSpec(mbit=mbit)) as lab:
        root = Path(tempfile.mkdtemp(prefix=f"bench-netlab-{n}-{committee}-{mbit:g}-{rtt_ms:g}-"))
        # round_timeout 30 s: the floor of the derived waits (node/peer/deadlines.py), as a hospital would set it
        overrides = campaign_overrides(model, rounds, round_timeout=30.0)
        with running_lab(lab, root, 300, overrides, committee=committee) as net:
            timed_out = wait_campaign(net, timeout)
            events = {name: p.events for name, p in net.procs.items()}
        relayed = lab.relay.bytes_forwarded if lab.relay else None
    out = summarize(events, n, rounds)
    return {
        "mbit": mbit,
        "rtt_ms": rtt_ms,
        "committee": committee,
        "shaped": BOTH_ENDS,
        **out,
        "bytes_sent_per_node": _per_node_bytes(events, rounds),
        "relay_bytes": relayed,
        "timed_out": timed_out,
        "campaign_wall_s": round(time.perf_counter() - started, 1),
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "command": _command(),
    }


def _per_node_bytes(events: dict[str, list[dict]], rounds: int) -> dict[str, dict[str, int]]:
    """Each node's payload bytes sent in rounds 1..``rounds`` (its ``round_done`` lines), by round
    then node: with a committee, seats and followers send different amounts."""
    out: dict[str, dict[str, int]] = {}
    for name, evs in events.items():
        for e in evs:
            if e["event"] == "round_done" and e["round"] <= rounds:
                out.setdefault(str(e["round"]), {})[name] = e["bytes_sent"]
    return out


def _command() -> str:
    return " ".join([Path(sys.executable).name, *sys.argv])


def _key(run: dict) -> tuple:
    return (run["nodes"], run.get("committee", 0), run["mbit"], run["rtt_ms"])


def _earlier(out: Path) -> list[dict]:
    """The rows already in ``out`` (a run of another grid point stays; the same point is redone)."""
    if not out.exists():
        return []
    old = json.loads(out.read_text())
    rows = old.get("runs", [])
    for row in rows:  # rows written before the per-run fields
        row.setdefault("committee", 0)
        row.setdefault("command", old.get("command"))
        row.setdefault("rounds_measured", row.pop("rounds_run", old.get("rounds")))
        # the per-run load average came with the relay fix: rows without it had only the
        # dialing side's link shaped
        row.setdefault(
            "shaped",
            BOTH_ENDS if "load_avg_before" in row else "the dialing side's link only (old lab)",
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, nargs="+", default=[4])
    parser.add_argument(
        "--committee",
        type=int,
        nargs="+",
        default=[0],
        help="aggregation committee sizes k to run at each N (0: every member; docs/committee.md)",
    )
    parser.add_argument(
        "--points",
        type=_point,
        nargs="+",
        default=GRID,
        help="grid points as MBIT/RTT_MS (default: the grid above)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="mlp-wide")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per campaign")
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_netlab.json"
    )
    parser.add_argument(
        "--table", action="store_true", help="print --out's rows as the docs' table; run nothing"
    )
    args = parser.parse_args(argv)
    if args.table:
        print(table(_earlier(args.out)))
        return 0
    params = int(sum(t.numel() for t in build_model(args.model, 30).state_dict().values()))
    runs = _earlier(args.out)
    ok = True
    for n in args.nodes:
        for k in args.committee:
            for mbit, rtt in args.points:
                print(
                    f"{n} hospitals, committee {k or 'all'}, {mbit:g} Mbit/s, {rtt:g} ms RTT, "
                    f"{args.model} ({params:,} parameters), load {os.getloadavg()[0]:.1f} ...",
                    flush=True,
                )
                run = run_one(n, k, mbit, rtt, args.rounds, args.model, args.timeout)
                run["rounds_measured"] = args.rounds
                print(
                    {
                        key: run["summary"].get(key)
                        for key in (
                            "round_wall_s_mean",
                            "bytes_per_round_mean",
                            "all_finalized_and_agreed",
                        )
                    },
                    flush=True,
                )
                ok = ok and run["summary"]["all_finalized_and_agreed"]
                runs = [r for r in runs if _key(r) != _key(run)] + [run]
                _write(args, params, sorted(runs, key=_key))
    return 0 if ok else 1


def table(runs: list[dict]) -> str:
    """The rows as docs/network.md's markdown table (steady rounds: 2..R)."""
    lines = [
        "| hospitals | committee | link | RTT | round wall time | bytes per round (all nodes) "
        "| most one node sent | mean train | mean network + chain | load before / after | all agreed |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in sorted(runs, key=_key):
        s = run["summary"]
        if "round_wall_s_mean" not in s:
            continue
        per_node = run.get("bytes_sent_per_node") or {}
        steady = [r for k, r in per_node.items() if k != "1"] or list(per_node.values())
        most = max((max(r.values()) for r in steady), default=None)
        load = (
            f"{run['load_avg_before'][0]:.0f} / {run['load_avg_after'][0]:.0f}"
            if "load_avg_before" in run
            else "not recorded"
        )
        lines.append(
            f"| {run['nodes']} | {run.get('committee') or 'all'} "
            f"| {run['mbit']:g} Mbit/s{'' if run.get('shaped') == BOTH_ENDS else ' *'} "
            f"| {run['rtt_ms']:g} ms | {s['round_wall_s_mean']:.1f} s "
            f"| {s['bytes_per_round_mean']:,} | {f'{most:,}' if most else '-'} "
            f"| {s['train_s_mean']:.1f} s | {s['network_chain_s_mean']:.1f} s | {load} "
            f"| {'yes' if s['all_finalized_and_agreed'] else 'no'} |"
        )
    return "\n".join(lines)


def _write(args: argparse.Namespace, params: int, runs: list[dict]) -> None:
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "note": "a shared 2-core VM: other engineers' work adds to the load; each run records "
            "the load average (1, 5, 15 min) before and after it",
        },
        "model": args.model,
        "parameters": params,
        "notes": "links: tbf both ways per hospital, no loss; RTT from the user-space relay; wall time per round: "
        "first round_joined to last round_done; bytes: payload all nodes sent (blobs + control); "
        "means over rounds 2..R; committee 0: every member aggregates; one row per "
        "(nodes, committee, Mbit/s, RTT), each with the command that produced it",
        "runs": runs,
    }
    atomic_write_json(args.out, report)
    print(f"written {args.out}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
