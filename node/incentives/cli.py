"""``medmesh incentives simulate``: the command-line entry of the incentive simulator."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register_commands"]


def register_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``incentives simulate`` to the ``medmesh`` CLI."""
    incentives = subparsers.add_parser(
        "incentives", help="compare incentive schemes on simulated hospitals"
    )
    sub = incentives.add_subparsers(dest="incentives_command", required=True, metavar="COMMAND")
    sim = sub.add_parser(
        "simulate",
        help="run a scenario; each scheme's credits are minted by the real contracts",
        description="Run a federated campaign of simulated hospitals in one process, value every round "
        "by each incentive scheme (equal, data size, leave-one-out, GTG-Shapley, reputation) and pay the "
        "credits through IncentiveDistributor contracts on the embedded chain (or --rpc).",
    )
    sim.add_argument(
        "--scenario",
        required=True,
        help="scenario TOML file, or the name of a shipped one (default, free-riders, poisoners)",
    )
    sim.add_argument(
        "--rpc", help="JSON-RPC URL of a chain, e.g. anvil (default: the embedded chain)"
    )
    sim.add_argument("--json", type=Path, help="write the full result as JSON")
    sim.add_argument(
        "--csv", type=Path, metavar="DIR", help="write credits.csv, schemes.csv and rounds.csv here"
    )
    sim.add_argument("--plots", type=Path, metavar="DIR", help="write SVG plots here")
    sim.add_argument(
        "--chain-state", type=Path, help="persist the embedded chain here (for `medmesh audit`)"
    )
    sim.add_argument(
        "--deployment-out", type=Path, help="write the core contracts' addresses (for --rpc chains)"
    )
    sim.add_argument("--rounds", type=int, help="override the scenario's number of rounds")
    sim.add_argument("--seed", type=int, help="override the scenario's seed")
    sim.add_argument("--no-progress", action="store_true")
    sim.set_defaults(func=_cmd_simulate)


def _cmd_simulate(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ledger import Deployment, connect, save_state

    from .plots import write_plots
    from .report import format_tables, summarize, write_csv, write_json
    from .scenario import load_scenario
    from .simulate import simulate

    scenario = load_scenario(args.scenario)
    if args.rounds is not None or args.seed is not None:
        scenario = replace(
            scenario,
            rounds=scenario.rounds if args.rounds is None else args.rounds,
            seed=scenario.seed if args.seed is None else args.seed,
        )
        scenario.check()
    if args.chain_state and args.rpc:
        raise ValueError(
            "--chain-state persists the embedded chain; with --rpc use --deployment-out"
        )
    w3 = connect(args.rpc)
    result = simulate(scenario, w3=w3, progress=not args.no_progress)
    summaries = summarize(result)
    print(format_tables(result, summaries))
    deployment = Deployment.from_dict(result.chain["deployment"])
    if args.chain_state:
        save_state(w3, args.chain_state, deployment)
        print(
            f"chain saved to {args.chain_state}; inspect it with: medmesh audit --chain-state {args.chain_state}"
        )
    if args.deployment_out:
        deployment.save(args.deployment_out)
        print(f"deployment written to {args.deployment_out}")
    if args.json:
        write_json(result, summaries, args.json)
        print(f"result written to {args.json}")
    if args.csv:
        print(
            "tables written to " + ", ".join(str(p) for p in write_csv(result, summaries, args.csv))
        )
    if args.plots:
        print(f"{len(write_plots(result, summaries, args.plots))} plots written to {args.plots}")
    return 0 if all(s.balances_match_chain for s in summaries) else 1
