#!/usr/bin/env python3
"""Chain reads (``eth_call``) per peer per round in a demo campaign, by contract function.

Counts every read a :class:`ledger.LedgerClient` makes while ``medmesh demo`` runs on the
embedded chain (the audit's own reads are not part of a round and are not made here).

    .venv/bin/python scripts/count_chain_reads.py [--hospitals 4] [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ledger.client as client  # noqa: E402
from node.cli import main as medmesh  # noqa: E402


def count_reads(hospitals: int, rounds: int) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    original = client.LedgerClient._call

    def counted(self, fn):
        counts[fn.fn_name] += 1
        return original(self, fn)

    client.LedgerClient._call = counted
    try:
        with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
            code = medmesh(
                [
                    "demo",
                    "--hospitals",
                    str(hospitals),
                    "--rounds",
                    str(rounds),
                    "--json",
                    str(Path(tmp) / "demo.json"),
                ]
            )
    finally:
        client.LedgerClient._call = original
    if code:
        raise SystemExit(f"the demo failed with exit code {code}")
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hospitals", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    counts = count_reads(args.hospitals, args.rounds)
    total = sum(counts.values())
    report = {
        "command": " ".join(sys.argv),
        "hospitals": args.hospitals,
        "rounds": args.rounds,
        "reads": total,
        "reads_per_peer_per_round": round(total / (args.hospitals * args.rounds), 2),
        "by_function": dict(counts.most_common()),
    }
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
