"""Profile: where a round's and a launch's seconds go in the deployed setting (issue 22).

Starts anvil (1 s blocks plus instant mining of each transaction), deploys the contracts and runs
4 ``medmesh node run --log-json`` processes (logreg) until the chain's round R has ended, like
``scripts/bench_nodes.py``. From the nodes' JSON logs it reports:

- **launch**: per node, launch -> ``started`` (interpreter, imports, chain reads, data, model),
  -> ``listening`` (libp2p host up), -> ``setup_done`` (mesh formed, standardizer agreed),
  -> ``round_joined`` of round 1 (opener's turn, first chain polls), -> first finalized
  ``round_done``; plus the import time of the node's modules in a fresh interpreter
  (``python -X importtime``), top-level packages by cumulative time;
- **rounds**: per round, a timeline across the nodes: when each joined after the round was
  opened, then its stages in pipeline order (``round_done`` stage times; ``other`` is the
  round's seconds outside the stages: the beacon, the attestation, logging), and the gap from
  the last ``round_done`` to the next ``opened`` (late-attestation grace, opener's turn, polls);
- **critical path**: per round, the node that finished last, its join lag and stage times.

The machine load (``os.getloadavg``) is recorded before and after: on a shared machine, compare
figures only between runs taken under the same load (interleave before/after runs).

    .venv/bin/python scripts/bench_latency.py                  # 4 nodes, 6 rounds
    .venv/bin/python scripts/bench_latency.py --rounds 3 --out benchmarks/results/x.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ledger import Anvil  # noqa: E402
from node.monitoring.stagetimes import STAGES  # noqa: E402
from node.service.fsutil import atomic_write_json  # noqa: E402
from node.service.localnet import LocalNet  # noqa: E402

_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")
LAUNCH_MARKS = ("started", "listening", "setup_done", "round_joined", "first_finalized")


def import_profile(module: str = "node.service.runner", top: int = 10) -> dict:
    """Import ``module`` in a fresh interpreter; its wall time and the packages that cost most
    (self time of every module, summed per top-level package, as ``-X importtime`` reports it)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - started
    packages: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        m = _IMPORT_LINE.match(line)
        if m:
            name = m.group(4).split(".")[0]
            packages[name] = packages.get(name, 0.0) + int(m.group(1)) / 1e6
    ranked = sorted(packages.items(), key=lambda kv: -kv[1])[:top]
    return {
        "module": module,
        "interpreter_wall_s": round(wall, 3),
        "package_self_s": {k: round(v, 3) for k, v in ranked},
    }


def run_campaign(
    rounds: int, model: str, timeout: float
) -> tuple[dict[str, list[dict]], float, dict]:
    overrides = {
        "training": {"model": model},
        "rounds": {"stop_after_round": rounds, "round_timeout": 30.0, "setup_timeout": 300.0},
        "privacy": {"rounds": rounds},
        "gossip": {"reconnect_initial": 0.5, "reconnect_max": 5.0},
    }
    with Anvil(block_time=1) as rpc:
        net = LocalNet(
            Path(tempfile.mkdtemp(prefix="bench-latency-")),
            rpc,
            4,
            commit_window=300,
            attest_window=300,
            overrides=overrides,
        )
        net.setup()
        launched = time.time()
        net.start_all()
        try:
            deadline = time.monotonic() + timeout
            for proc in net.procs.values():
                proc.wait_for(
                    lambda e: e["event"] == "exited",
                    max(deadline - time.monotonic(), 1),
                    "the end of the campaign",
                )
        finally:
            net.stop_all()
        codes = {name: p.proc.returncode for name, p in net.procs.items()}
        return {name: p.events for name, p in net.procs.items()}, launched, codes


def _first(events: list[dict], pred) -> dict | None:
    return next((e for e in events if pred(e)), None)


def launch_profile(events: dict[str, list[dict]], launched: float) -> dict:
    """Per node: seconds from launch to each mark, and the step between consecutive marks."""
    per_node = {}
    for name, ev in events.items():
        marks = {
            "started": _first(ev, lambda e: e["event"] == "started"),
            "listening": _first(ev, lambda e: e["event"] == "listening"),
            "setup_done": _first(
                ev, lambda e: e["event"] in ("setup_done", "standardizer_fetched")
            ),
            "round_joined": _first(ev, lambda e: e["event"] == "round_joined"),
            "first_finalized": _first(ev, lambda e: e["event"] == "round_done" and e["finalized"]),
        }
        at = {k: round(v["ts"] - launched, 3) for k, v in marks.items() if v is not None}
        steps, previous = {}, 0.0
        for k in LAUNCH_MARKS:
            if k in at:
                steps[k] = round(at[k] - previous, 3)
                previous = at[k]
        per_node[name] = {"since_launch_s": at, "step_s": steps}
    firsts = [n["since_launch_s"].get("first_finalized") for n in per_node.values()]
    mean_steps = {
        k: round(statistics.fmean(n["step_s"].get(k, 0.0) for n in per_node.values()), 3)
        for k in LAUNCH_MARKS
    }
    return {
        "per_node": per_node,
        "step_mean_s": mean_steps,
        "launch_to_first_finalized_s": min((f for f in firsts if f is not None), default=None),
    }


def round_profile(events: dict[str, list[dict]], round_: int) -> dict | None:
    done = {
        n: _first(ev, lambda e: e["event"] == "round_done" and e["round"] == round_)
        for n, ev in events.items()
    }
    joined = {
        n: _first(ev, lambda e: e["event"] == "round_joined" and e["round"] == round_)
        for n, ev in events.items()
    }
    opened = [
        e for ev in events.values() for e in ev if e["event"] == "opened" and e["round"] == round_
    ]
    if not all(done.values()) or not all(joined.values()):
        return None
    t0 = min([e["ts"] for e in opened] or [min(j["ts"] for j in joined.values())])
    nodes = {}
    for n in events:
        d, j = done[n], joined[n]
        stages = {s: d["stages"].get(s, 0.0) for s in STAGES if s in d["stages"]}
        nodes[n] = {
            "joined_after_open_s": round(j["ts"] - t0, 3),
            "stages_s": stages,
            "other_s": round(d["seconds"] - sum(stages.values()), 3),
            "round_s": d["seconds"],
            "done_after_open_s": round(d["ts"] - t0, 3),
            "finalized": d["finalized"],
        }
    last = max(nodes, key=lambda n: nodes[n]["done_after_open_s"])
    crit = nodes[last]
    return {
        "round": round_,
        "opened_by_event": bool(opened),
        "nodes": nodes,
        "wall_s": round(max(d["ts"] for d in done.values()) - t0, 3),
        "critical_path": {
            "node": last,
            "join_lag_s": crit["joined_after_open_s"],
            **crit["stages_s"],
            "other_s": crit["other_s"],
        },
        "last_done_ts": max(d["ts"] for d in done.values()),
        "opened_ts": t0,
    }


def summarize(report: dict) -> dict:
    """Means and medians over the steady rounds (2..R-1), and the critical path's mean stages."""
    rounds = report["rounds"]
    steady = [r for r in rounds[1:-1] if "gap_to_next_open_s" in r]
    if not steady:
        return {}
    cycle = [r["wall_s"] + r["gap_to_next_open_s"] for r in steady]
    crit = {
        k: round(statistics.fmean(r["critical_path"].get(k, 0.0) for r in steady), 3)
        for k in ("join_lag_s", *STAGES, "other_s")
    }
    return {
        "steady_rounds": [r["round"] for r in steady],
        "round_wall_s_mean": round(statistics.fmean(r["wall_s"] for r in steady), 3),
        "round_wall_s_median": round(statistics.median(r["wall_s"] for r in steady), 3),
        "round_cycle_s_mean": round(statistics.fmean(cycle), 3),
        "gap_to_next_open_s_mean": round(
            statistics.fmean(r["gap_to_next_open_s"] for r in steady), 3
        ),
        "join_lag_s_mean": round(
            statistics.fmean(n["joined_after_open_s"] for r in steady for n in r["nodes"].values()),
            3,
        ),
        "critical_path_mean_s": crit,
        "launch_to_first_finalized_s": report["launch"]["launch_to_first_finalized_s"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--model", default="logreg")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_latency.json"
    )
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    imports = import_profile()
    events, launched, codes = run_campaign(args.rounds, args.model, args.timeout)
    rounds = [
        r for r in (round_profile(events, k) for k in range(1, args.rounds + 1)) if r is not None
    ]
    for previous, nxt in zip(rounds, rounds[1:], strict=False):
        previous["gap_to_next_open_s"] = round(nxt["opened_ts"] - previous["last_done_ts"], 3)
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()],
        },
        "model": args.model,
        "nodes": 4,
        "rounds_asked": args.rounds,
        "exit_codes": codes,
        "imports": imports,
        "launch": launch_profile(events, launched),
        "rounds": rounds,
        "notes": "steady rounds: 2..R-1 (round 1 carries warm-up: first dials, torch's lazy imports; in round R "
        "the nodes exit once it finalized, and a blob still in flight is lost with its sender)",
    }
    report["summary"] = summarize(report)
    atomic_write_json(args.out, report)
    print(
        json.dumps(
            {
                "load": report["machine"]["load_before"],
                "imports": imports,
                "launch": report["launch"]["step_mean_s"],
                **report["summary"],
            },
            indent=1,
        )
    )
    for r in rounds:
        print(
            f"round {r['round']}: wall {r['wall_s']} s, gap {r.get('gap_to_next_open_s')}, critical path "
            f"{json.dumps(r['critical_path'])}"
        )
    print(f"written {args.out}", flush=True)
    return 0 if len(rounds) == args.rounds else 1


if __name__ == "__main__":
    sys.exit(main())
