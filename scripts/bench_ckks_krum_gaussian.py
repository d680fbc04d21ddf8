"""Why Krum over robust ckks trails sealed Krum under the Gaussian attack at f = 2 (issue 23).

The robustness benchmark's campaign (``bench_robust.py``: breast cancer, 10 hospitals, 5 rounds,
no DP; the first f = 2 are Byzantine and send Gaussian noise of sigma 200, seeded by the round)
run twice with Krum: in the clear (what sealed runs) and over encrypted updates (the steps of
:func:`node.crypto.ckks.robust.encrypted_round`, keeping the decrypted Gram matrix). For each
round of the encrypted campaign, against the clear Krum on the same updates, it records:

- the Byzantine rows' true squared norms and what the key holder decrypted for them (beyond the
  2^17 scalar bound, so NaN, a negative value, or a wrong value in range: wrapped around);
- the row each selection picks, and whether the encrypted round failed (the sum check), which
  keeps the model;
- the largest relative error of an honest-honest distance (the CKKS noise) and the clear Krum
  scores' margin between the best and the second-best honest row (could noise flip a near-tie?);
- how many Byzantine rows the encrypted selection counts among the picked row's nearest;
- the clear Krum's pick on the rows the encrypted selection kept (the out-of-range rows left
  out before the rule, so that Krum's n - f - 2 neighbours are counted among fewer rows).

    .venv/bin/python scripts/bench_ckks_krum_gaussian.py

Writes ``benchmarks/results/bench_ckks_krum_gaussian.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from bench_robust import LIAR_CLAIM, attack_rows, tabular_setup  # noqa: E402

from node.consensus.robust_audit import check_sum, distances_from_gram, select_from_gram  # noqa: E402
from node.consensus.rules import aggregate, make_rule  # noqa: E402
from node.crypto.ckks.robust import GramEvaluator, RobustKeyHolder, scalar_bound  # noqa: E402
from node.learning.evaluation import evaluate  # noqa: E402
from node.learning.models import build_model, flat_parameters, load_flat_parameters  # noqa: E402
from node.learning.privacy import PrivacyLedger  # noqa: E402
from node.learning.training import TrainConfig, train_local  # noqa: E402
from node.service.fsutil import atomic_write_json  # noqa: E402

RULE, ATTACK = "krum", "gaussian"


def krum_scores(dist: np.ndarray, f: int) -> np.ndarray:
    """Krum's score (Blanchard et al. 2017): the sum of each row's n - f - 2 smallest distances."""
    n = len(dist)
    return np.array([np.sort(np.delete(dist[i], i))[: n - f - 2].sum() for i in range(n)])


def encrypted_krum(stack: np.ndarray, f: int, round_: int) -> dict:
    """One robust ckks round's selection and sum, as encrypted_round runs it, with its Gram matrix."""
    holder = RobustKeyHolder()
    evaluator = GramEvaluator(holder.public, holder.evaluation_keys_bytes)
    public = holder.public
    vectors = [public.load(public.encrypt(row, round_), round_) for row in stack]
    gram = holder.decrypt_gram(evaluator.gram(vectors, round_), round_, len(vectors))
    chosen = select_from_gram(RULE, gram, f=f)
    blob = public.sum([vectors[i] for i in chosen.accepted], round_)
    total = holder.decrypt_sum(blob, round_, min_summands=1).values
    try:
        check_sum(total, gram, chosen)
        failed = None
    except ValueError as exc:
        failed = str(exc)[:100]
    return {"gram": gram, "chosen": chosen, "total": total, "failed": failed}


def diagnose(stack: np.ndarray, f: int, out: dict) -> dict:
    """One round's record: the clear Krum on ``stack`` against the encrypted round ``out``."""
    x = stack.astype(np.float64)
    true_gram = x @ x.T
    clear_dist = distances_from_gram(true_gram)
    clear_scores = krum_scores(clear_dist, f)
    honest = np.arange(f, len(x))
    ordered = np.sort(clear_scores[honest])
    gram, chosen = out["gram"], out["chosen"]
    ok = [i for i in range(len(x)) if i not in chosen.out_of_range]
    enc_dist = distances_from_gram(gram[np.ix_(ok, ok)])
    hh = np.ix_([ok.index(i) for i in honest], [ok.index(i) for i in honest])
    ref = clear_dist[np.ix_(honest, honest)]
    mask = ref > 0
    noise = float(np.max(np.abs(enc_dist[hh][mask] - ref[mask]) / ref[mask]))
    pick = chosen.accepted[0]
    nearest = np.argsort(enc_dist[ok.index(pick)])[1 : len(ok) - f - 1]
    return {
        "clear_pick": int(make_rule(RULE, f).select(stack)[0]),
        # the clear Krum on the rows in range only: what robust ckks picked while it left the
        # out-of-range rows out before the rule (Krum's n - f - 2 neighbours among fewer rows)
        "clear_pick_without_left_out_rows": int(ok[make_rule(RULE, f).select(stack[ok])[0]]),
        "ckks_pick": int(pick),
        "ckks_round_failed": out["failed"],
        "out_of_range_rows": [int(i) for i in chosen.out_of_range],
        "byzantine_true_sq_norms": [float(true_gram[i, i]) for i in range(f)],
        "byzantine_decrypted_sq_norms": [
            None if np.isnan(gram[i, i]) else float(gram[i, i]) for i in range(f)
        ],
        "byzantine_among_picks_nearest": int(sum(ok[j] < f for j in nearest)),
        "max_rel_error_honest_distance": noise,
        "clear_honest_score_margin": float((ordered[1] - ordered[0]) / ordered[0]),
    }


def campaign(setup: dict, f: int, encrypted: bool) -> dict:
    """bench_robust's campaign for the Gaussian attack, Krum in the clear or over ciphertexts."""
    sites, n = setup["sites"], len(setup["sites"])
    ledgers = [PrivacyLedger(setup["dp"], warn_if_off=False) for _ in sites]
    weights = [LIAR_CLAIM if i < f else float(len(d)) for i, d in enumerate(sites)]
    model = build_model(setup["model"], input_shape=sites[0].input_shape)
    params, rounds = flat_parameters(model), []
    for r in range(setup["rounds"]):
        deltas = [
            train_local(
                model,
                params,
                sites[i],
                ledgers[i],
                TrainConfig(setup["lr"], seed=r * 1000 + i, device="cpu"),
            ).delta
            for i in range(f, n)
        ]
        honest = np.stack(deltas)
        stack = np.concatenate([attack_rows(ATTACK, honest, f, n, r), honest]).astype(np.float32)
        if encrypted:
            out = encrypted_krum(stack, f, r)
            rounds.append(diagnose(stack, f, out))
            step = (
                np.zeros_like(params)  # the protocol's round fails: the model stays
                if out["failed"]
                else (out["total"] / len(out["chosen"].accepted)).astype(np.float32)
            )
        else:
            step = aggregate(RULE, stack, weights, f=f)
        params = (params + step).astype(np.float32)
    load_flat_parameters(model, params)
    return {"accuracy": round(evaluate(model, setup["test"]).accuracy, 4), "rounds": rounds}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fs", type=int, nargs="+", default=[2])
    ap.add_argument("--seed", type=int, default=0, help="data split seed (bench_robust's)")
    ap.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/bench_ckks_krum_gaussian.json")
    )
    args = ap.parse_args(argv)
    setup = tabular_setup(argparse.Namespace(peers=10, seed=args.seed, rounds=5, dp_epsilon=None))
    started, results = time.perf_counter(), []
    for f in args.fs:
        clear, ckks = campaign(setup, f, False), campaign(setup, f, True)
        results.append({"f": f, "clear_accuracy": clear["accuracy"], **ckks})
        print(f"f = {f}: clear Krum {clear['accuracy']:.4f}, ckks Krum {ckks['accuracy']:.4f}")
        for r, row in enumerate(ckks["rounds"]):
            print(f"  round {r}: {row}")
    atomic_write_json(
        args.out,
        {
            "command": " ".join(["scripts/bench_ckks_krum_gaussian.py", *(argv or sys.argv[1:])]),
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "load_average": os.getloadavg(),
            },
            "scalar_bound": scalar_bound(RobustKeyHolder().params),
            "seconds": round(time.perf_counter() - started, 1),
            "results": results,
        },
    )
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
