"""The `medmesh` command line: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from dataclasses import replace
from pathlib import Path

__all__ = ["main", "build_parser"]


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    if not verbose:  # the libraries' own chatter (see shared notes on py-libp2p) stays out
        for noisy in ("libp2p", "multiaddr", "async_service", "web3", "eth"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*Full backward hook.*")


def _cmd_demo(args: argparse.Namespace) -> int:
    from node.protection import check_committee
    from node.sim.demo import DemoConfig, format_report, records_dir, run_demo

    check_committee(args.protection, args.committee, args.hospitals, rule=args.rule)
    cfg = DemoConfig(
        rounds=args.rounds,
        hospitals=args.hospitals,
        epsilon=args.epsilon,
        rule=args.rule,
        model=args.model,
        data=args.data,
        scaling=args.scaling,
        learning_rate=args.learning_rate,
        seed=args.seed,
        protection=args.protection,
        topk=args.topk,
        quantize=args.quantize,
        clip_norm=args.clip_norm,
        norm_bound=args.norm_bound,
        rpc=args.rpc,
        accountant=args.accountant,
        chain_state=args.chain_state,
        json_path=args.json,
        progress=not args.no_progress,
        model_out=args.model_out,
        committee=args.committee,
    )
    report = run_demo(cfg)
    print(format_report(report))
    if args.json:
        print(f"report written to {args.json}")
    if args.deployment_out:
        from ledger import Deployment

        Deployment.from_dict(report["chain"]["deployment"]).save(args.deployment_out)
        print(
            f"deployment written to {args.deployment_out}; inspect the chain with: "
            f"medmesh audit --rpc {args.rpc or '<url>'} --deployment {args.deployment_out}"
        )
    if args.chain_state and not args.rpc:
        print(
            f"chain saved to {args.chain_state}; inspect it with: medmesh audit --chain-state {args.chain_state}"
        )
        print(
            f"members' signed attestations in {records_dir(args.chain_state)}/: anchor the audit with "
            f"--expect-head {records_dir(args.chain_state)}/<member>-round-<n>.json"
        )
        if args.model_out:
            print(
                f"final model saved to {args.model_out}; trace it with: "
                f"medmesh audit --chain-state {args.chain_state} verify {args.model_out}"
            )
    return 0 if all(r["finalized"] for r in report["rounds"]) and report["peers_agree"] else 1


def _cmd_simulate(args: argparse.Namespace) -> int:
    from node.protection import check_committee
    from node.sim.consortium import SimConfig, format_simulation, progress_bar, simulate

    check_committee(args.protection, args.committee or 0, args.peers, rule=args.rule)
    cfg = SimConfig(
        peers=args.peers,
        committee=args.committee,
        rounds=args.rounds,
        params=args.params,
        protection=args.protection,
        rule=args.rule,
        rows=args.rows,
        seed=args.seed,
        transport=args.transport,
        json_path=args.json,
        progress=not args.no_progress,
    )
    if args.chain == "anvil":
        from ledger import Anvil

        with Anvil() as rpc:
            report = simulate(replace(cfg, rpc=rpc), progress_bar(cfg))
    else:
        report = simulate(cfg, progress_bar(cfg))
    print(format_simulation(report))
    if args.json:
        print(f"report written to {args.json}")
    return 0 if report["all_finalized_one_hash"] else 1


def _add_demo(sub: argparse._SubParsersAction) -> None:
    from node.consensus.rules import RULES
    from node.learning.modelnames import MODEL_NAMES
    from node.protection import MODE_CODES
    from node.service.config import ACCOUNTANTS
    from node.sim.democonfig import (
        DEMO_DATA,
        DemoConfig,
    )  # not node.demo: `node run` never loads the demo

    demo = sub.add_parser(
        "demo", help="run a federated campaign among hospital peers in one process"
    )
    d = DemoConfig  # the defaults, written once in the node's schema
    demo.add_argument("--rounds", type=int, default=d.rounds)
    demo.add_argument("--hospitals", type=int, default=d.hospitals)
    demo.add_argument(
        "--committee",
        type=int,
        default=d.committee,
        metavar="K",
        help="attesters the beacon draws per round (0: every hospital; sealed, secagg, or ckks with "
        "fedavg; docs/committee.md)",
    )
    demo.add_argument(
        "--epsilon", type=float, default=d.epsilon, help="DP budget for the whole campaign"
    )
    demo.add_argument("--rule", choices=sorted(RULES), default=d.rule)
    demo.add_argument(
        "--protection",
        choices=tuple(MODE_CODES),
        default=d.protection,
        help="how updates are protected: sealed (any rule), secagg or ckks (sum only: --rule fedavg)",
    )
    demo.add_argument(
        "--topk",
        type=float,
        help="send only this fraction of coordinates (error feedback), e.g. 0.1",
    )
    demo.add_argument("--quantize", action="store_true", help="8-bit values (sealed only)")
    demo.add_argument(
        "--clip-norm", type=float, help="L2-clip each update before masking or encrypting"
    )
    demo.add_argument(
        "--norm-bound",
        action="store_true",
        help="scale each update to at most the median norm before the rule (Sun et al. 2019; "
        "sealed, or ckks with krum / multi-krum)",
    )
    demo.add_argument(
        "--accountant",
        choices=ACCOUNTANTS,
        default=d.accountant,
        help="privacy accountant (PRV, the default, is tighter than RDP)",
    )
    demo.add_argument("--model", choices=MODEL_NAMES, default=d.model)
    demo.add_argument(
        "--data",
        choices=DEMO_DATA,
        default=d.data,
        help="the hospitals' data: breast cancer (tabular) or SYNTHETIC 32x32 lesion images "
        "(with --model imaging-features or cnn)",
    )
    demo.add_argument(
        "--scaling",
        choices=("secure", "bounds", "federated"),
        default=d.scaling,
        help="breast-cancer features: published ranges plus a secure-sum centre (default), "
        "published ranges only, or medians of the sites' sums in the clear (docs/standardizer.md)",
    )
    demo.add_argument(
        "--learning-rate", type=float, default=d.learning_rate, help="local SGD learning rate"
    )
    demo.add_argument("--seed", type=int, default=d.seed)
    demo.add_argument("--rpc", help="JSON-RPC URL of a chain (default: the embedded chain)")
    demo.add_argument(
        "--chain-state", type=Path, help="persist the embedded chain here (for `medmesh audit`)"
    )
    demo.add_argument("--json", type=Path, help="write the full report as JSON")
    demo.add_argument(
        "--deployment-out", type=Path, help="write the contracts' addresses (for --rpc chains)"
    )
    demo.add_argument("--model-out", type=Path, help="save the final model's parameters (.npy)")
    demo.add_argument("--no-progress", action="store_true")
    demo.set_defaults(func=_cmd_demo)


def _add_simulate(sub: argparse._SubParsersAction) -> None:
    from node.consensus.rules import RULES
    from node.protection import MODE_CODES

    sim = sub.add_parser(
        "simulate",
        help="run the real round pipeline for N members in one process (in-memory network) "
        "and report bytes per member, chain transactions, gas and time per round",
    )
    sim.add_argument("--peers", type=int, default=8, help="members of the consortium (N)")
    sim.add_argument(
        "--committee",
        type=int,
        metavar="K",
        help="attesters the beacon draws per round (default N: every member; sealed, secagg, or "
        "ckks with fedavg; docs/committee.md)",
    )
    sim.add_argument("--rounds", type=int, default=1)
    sim.add_argument(
        "--params", type=int, default=100_000, help="model parameters (an MLP of that size)"
    )
    sim.add_argument("--protection", choices=tuple(MODE_CODES), default="sealed")
    sim.add_argument("--rule", choices=sorted(RULES), default="fedavg")
    sim.add_argument("--rows", type=int, default=32, help="training rows per member")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument(
        "--chain",
        choices=("embedded", "anvil"),
        default="embedded",
        help="the embedded py-evm chain, or a fresh anvil devnet",
    )
    sim.add_argument(
        "--transport",
        choices=("memory", "libp2p"),
        default="memory",
        help="in-memory hosts, or one real libp2p host per member on 127.0.0.1 in this process",
    )
    sim.add_argument("--json", type=Path, help="write the report as JSON")
    sim.add_argument("--no-progress", action="store_true")
    sim.set_defaults(func=_cmd_simulate)


def _add_ledger(sub: argparse._SubParsersAction) -> None:
    from ledger.cli import register_commands

    register_commands(sub)


def _add_incentives(sub: argparse._SubParsersAction) -> None:
    from node.incentives.cli import register_commands

    register_commands(sub)


def _add_node(sub: argparse._SubParsersAction) -> None:
    from node.service.cli import register_node_commands

    register_node_commands(sub)


#: Each command and the function that adds it (with its siblings). Only the invoked command's
#: parser is built, so `medmesh node init` or `node add-peer` import neither torch nor
#: opacus (`node add-peer`: 6.1 -> 2.8 s, docs/latency.md); `medmesh --help` builds them all.
COMMANDS = {
    "demo": _add_demo,
    "simulate": _add_simulate,
    "devnet": _add_ledger,
    "audit": _add_ledger,
    "incentives": _add_incentives,
    "node": _add_node,
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``'s command (every command's when ``argv`` names none known)."""
    command = next((a for a in argv or () if not a.startswith("-")), None)
    adders = [COMMANDS[command]] if command in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    parser = argparse.ArgumentParser(prog="medmesh", description=__doc__)
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log every event (peer and round)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for add in adders:
        add(sub)
    return parser


def _user_error(exc: BaseException) -> bool:
    """An error to report in one line: a bad value, an OS failure, or the ledger's or the
    network's own errors (looked up only if their packages were loaded: a command that never
    imported web3 or libp2p cannot have raised theirs)."""
    if isinstance(exc, (ValueError, OSError, RuntimeError)):
        return True
    for module, name in (("ledger", "LedgerError"), ("gossip", "GossipError")):
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(exc, getattr(loaded, name)):
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("medmesh: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not _user_error(exc):
            raise
        print(f"medmesh: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
