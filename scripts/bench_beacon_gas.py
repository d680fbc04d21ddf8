#!/usr/bin/env python3
"""Gas of the round beacon (issue 15, section 3): commit, reveal and recordWithheld per member.

A fresh deployment gets ``members`` members (genesis seats); each commits a secret for round 1,
the first opens the round, every member but the last reveals, the clock passes the reveal
deadline and the first records the last one's withholding. Reported: ``gasUsed`` of commit
(first, later median), reveal (first, later median) and recordWithheld. O(1) in the
membership: the sizes show it.

    .venv/bin/python scripts/bench_beacon_gas.py --json benchmarks/results/beacon_gas.json
    .venv/bin/python scripts/bench_gas.py --from-json benchmarks/results/ledger_gas.json --md docs/ledger-gas.md

(the second renders docs/ledger-gas.md, whose beacon section comes from this script's JSON).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_gas import enrolled  # noqa: E402  (this script's folder is on sys.path)
from eth_utils import keccak  # noqa: E402

from ledger import advance_time, connect  # noqa: E402
from ledger.beacon import beacon_info, commit_secret, record_withheld, reveal_secret  # noqa: E402
from ledger.compile import solc_version  # noqa: E402


def measure(members: int) -> dict[str, Any]:
    w3 = connect()
    clients = enrolled(w3, "embedded", members, tag="beacon")
    secrets = [keccak(text=f"secret-{i}") for i in range(members)]
    for h, s in zip(clients, secrets, strict=False):
        commit_secret(h, 1, s)
    clients[0].open_round()
    for h, s in list(zip(clients, secrets, strict=False))[:-1]:
        reveal_secret(h, 1, s)
    advance_time(
        w3,
        beacon_info(clients[0], 1).reveal_deadline
        - int(w3.eth.get_block("latest")["timestamp"])
        + 2,
    )
    record_withheld(clients[0], 1, clients[-1].address)
    commits = [h.gas_used["beacon_commit"][0] for h in clients]
    reveals = [h.gas_used["beacon_reveal"][0] for h in clients[:-1]]
    return {
        "members": members,
        "commit_first": commits[0],
        "commit_later_median": int(statistics.median(commits[1:])),
        "reveal_first": reveals[0],
        "reveal_later_median": int(statistics.median(reveals[1:])),
        "recordWithheld": clients[0].gas_used["beacon_record_withheld"][0],
        "status_after_deadline": beacon_info(clients[0], 1).status,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    rows = [measure(n) for n in args.sizes]
    report = {
        "command": "python scripts/bench_beacon_gas.py " + " ".join(sys.argv[1:]),
        "chain": "embedded (eth-tester / py-evm, prague)",
        "solc": str(solc_version()),
        "rows": rows,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print("| members | commit (first / later) | reveal (first / later) | recordWithheld |")
    print("|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['members']} | {r['commit_first']:,} / {r['commit_later_median']:,} | "
            f"{r['reveal_first']:,} / {r['reveal_later_median']:,} | {r['recordWithheld']:,} |"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
