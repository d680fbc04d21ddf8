"""Gas of the calls that bound self-reported figures (issue 14, section 3), measured on anvil.

    PYTHONPATH=. python scripts/bench_figures_gas.py [--out benchmarks/results/ledger_figures_gas.json]

Four hospitals register (cohort and two unique keys), are admitted and declare their privacy
budgets; then two rounds, each with four commits (cohort cap, budget and cumulative-epsilon
checks), one rejection record (checked against the reporter's attestation) and four
attestations (checked against the reporter's rejections); finally an IncentiveDistributor
award with a penalty (charged against the per-member cap). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger import (
    Anvil,
    DistributorClient,
    LedgerClient,
    connect,
    deploy,
    deploy_distributor,
    dev_account,
    institution_id,  # noqa: E402
)  # noqa: E402
from ledger.records import PrivacyBudget  # noqa: E402

BUDGET = PrivacyBudget(
    epsilon=1.0, delta=1e-5, accountant="prv", noise_multiplier=1.1, clip_norm=1.0
)


def _key(label: str) -> bytes:
    from hashlib import sha256

    return sha256(label.encode()).digest()


def measure() -> dict[str, dict[str, int]]:
    with Anvil() as rpc:
        w3 = connect(rpc)
        admin_account = dev_account(w3, 0)
        deployment = deploy(w3, admin_account)
        admin = LedgerClient(w3, deployment, admin_account)
        hospitals = [LedgerClient(w3, deployment, dev_account(w3, i)) for i in range(1, 5)]
        for i, h in enumerate(hospitals):
            h.register(
                institution_id(f"Gas Hospital {i}"),
                f"12D3KooWgas{i}",
                _key(f"seal{i}"),
                _key(f"sign{i}"),
                500,
            )
            admin.admit(h.address)
            h.declare_privacy_budget(BUDGET)
        everyone = [h.address for h in hospitals]
        a, b, c, d = hospitals
        for rnd_eps in (0.4, 0.8):
            rnd = a.open_round()
            for i, h in enumerate(hospitals):
                h.commit_update(rnd, _key(f"u{rnd}-{i}"), 100 + i, rnd_eps, 1)
            a.record_rejections(rnd, {d.address: "hash-mismatch"})
            for h in hospitals:
                h.attest(rnd, _key(f"agg{rnd}"), everyone[:3])  # d left out (a rejected it)
            a.finalize(rnd)
        addresses = deploy_distributor(
            w3, admin_account, deployment, budget_per_round=10**20, max_penalty_per_round=10**18
        )
        dist = DistributorClient(w3, addresses, admin_account)
        receipt = dist.award(
            1, "shapley-gtg", {a.address: 10**18, b.address: 10**18}, {d.address: 10**17}
        )
    gas: dict[str, list[int]] = {}
    for h in hospitals:
        for method, values in h.gas_used.items():
            gas.setdefault(method, []).extend(values)
    gas["award_with_penalty"] = [receipt.gas_used]
    return {
        k: {"n": len(v), "min": min(v), "median": int(statistics.median(v)), "max": max(v)}
        for k, v in sorted(gas.items())
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/ledger_figures_gas.json")
    )
    args = parser.parse_args()
    table = measure()
    result = {
        "command": "PYTHONPATH=. python scripts/bench_figures_gas.py",
        "chain": "anvil",
        "members": 4,
        "gas": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{'call':<24} {'n':>3} {'min':>9} {'median':>9} {'max':>9}")
    for name, row in table.items():
        print(f"{name:<24} {row['n']:>3} {row['min']:>9} {row['median']:>9} {row['max']:>9}")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
