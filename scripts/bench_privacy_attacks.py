#!/usr/bin/env python3
"""Privacy measured by attack (issue 9, part 4), on the SYNTHETIC imaging task.

1. Gradient inversion of single-batch updates ("Inverting Gradients", Geiping et al. 2020;
   :mod:`node.adversary.privacy_attacks.inversion`). A victim hospital takes one SGD step on a batch of
   one image with the real :func:`node.learning.training.train_local` (learning rate ``--victim-lr``,
   from the model's seeded initialization, i.e. the first round's global model) and sends
   the update; the attacker knows the starting parameters and the learning rate, as every
   peer does, reads the label off the update and optimizes an image to match it.

   - Without DP, and with DP-SGD at epsilon 1 (delta 1e-5, clipping norm 1, RDP accountant):
     the noise multiplier is calibrated so that this ONE full-batch step spends the whole
     epsilon 1, the setting most favourable to the attacker (a campaign spreads epsilon over
     many steps, each noisier).
   - Three models: ``cnn``, the end-to-end imaging model; ``mlp`` on the flattened pixels, a
     positive control: a fully connected first layer is known to leak its input exactly (Phong
     et al. 2017), so it shows what the attack recovers from a model that leaks; and
     ``imaging-features``, the DP imaging model (a linear head on fixed scattering + blob
     features). Its update is a linear model's gradient, so its INPUT, the feature vector, is
     read off exactly (:func:`~node.adversary.privacy_attacks.linear_head_input`: reported as the cosine
     and relative error against the true features); the pixel attack optimizes an image
     through the fixed feature map to match the update.
   - Quality: PSNR and SSIM (Wang et al. 2004) against the true image, next to three guesses
     that saw no update: uniform noise, a flat image at the data's mean grey, and another
     image drawn from the same distribution ("prior guess"). "No better than noise": the
     reconstruction's mean SSIM is at most the best of those guesses' mean SSIM.

2. Loss-threshold membership inference (Yeom et al. 2018; :mod:`node.adversary.privacy_attacks.membership`)
   on the final model of a FedAvg campaign (``--sites`` hospitals of ``--site-size`` images),
   without DP and with DP-SGD at epsilon 1 for the whole campaign: AUC and advantage over an
   equal number of training images (members) and held-out images (non-members), and the
   held-out accuracy (the utility cost). For each of ``--mia-models``: ``cnn`` at ``--rounds`` x
   ``--epochs`` x ``--steps`` SGD steps (learning rate ``--lr``, ``--dp-lr`` under DP), and
   ``imaging-features`` at its schedule picked by validation
   (:data:`node.learning.imagefeatures.DP_SCHEDULE`), the images mapped once to features by
   :func:`node.learning.models.model_input`.

``--quick`` is a smoke run (fewer images, iterations and rounds), about 2 minutes.

    .venv/bin/python scripts/bench_privacy_attacks.py            # full
    .venv/bin/python scripts/bench_privacy_attacks.py --quick

Writes ``benchmarks/results/bench_privacy_attacks.json`` (``..._quick.json`` with --quick) with
the exact command and the machine, and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(
    0, str(Path(__file__).resolve().parents[1])
)  # this checkout's node/, not an installed one

from node.adversary.privacy_attacks import (
    InversionConfig,
    gradient_from_update,
    invert_gradient,
    linear_head_input,
    loss_threshold_attack,
    per_sample_losses,
    psnr,
    ssim,
)
from node.data.datasets import synthetic_imaging_split, synthetic_lesions
from node.data.samples import ImageData, LabelledData, TabularData
from node.learning.evaluation import evaluate
from node.learning.imagefeatures import DP_SCHEDULE, image_features
from node.learning.models import build_model, flat_parameters, model_input
from node.learning.privacy import DPConfig, PrivacyLedger
from node.learning.training import TrainConfig, train_local
from node.sim.simulation import run_campaign

EPSILON, DELTA = 1.0, 1e-5


def mean(values: list[float]) -> float:
    return round(float(np.mean(values)), 4)


def as_model_input(name: str, images: ImageData) -> LabelledData:
    """The MLP control takes the pixels flattened; the others take the images (the feature
    model maps them through its fixed features, so the pixel attack optimizes through them)."""
    return TabularData(images.x.reshape(len(images), -1), images.y) if name == "mlp" else images


def feature_recovery(gradient: np.ndarray, image: np.ndarray) -> dict[str, float]:
    """How well the linear head's update gives away the image's feature vector."""
    with torch.no_grad():
        truth = image_features(torch.from_numpy(image[None])).numpy()[0].astype(np.float64)
    got = linear_head_input(gradient).astype(np.float64)
    return {
        "feature_cosine": float(got @ truth / (np.linalg.norm(got) * np.linalg.norm(truth))),
        "feature_rel_error": float(np.linalg.norm(got - truth) / np.linalg.norm(truth)),
    }


def single_step_dp(dp: bool) -> DPConfig:
    return DPConfig(
        enabled=dp,
        target_epsilon=EPSILON,
        delta=DELTA,
        rounds=1,
        local_epochs=1,
        steps_per_epoch=1,
        max_grad_norm=1.0,
        accountant="rdp",
        count_noise=None,
    ).calibrated()  # one update: no count


def guesses(
    truth: np.ndarray, other: np.ndarray, grey: float, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    return {
        "uniform noise": rng.random(truth.shape).astype(np.float32),
        "flat mean grey": np.full_like(truth, grey),
        "prior guess (another image)": other,
    }


def inversion_part(args) -> dict:
    images = synthetic_lesions(args.images + 1, size=args.size, seed=args.seed + 77, site="victim")
    grey = float(images.x.mean())
    rng = np.random.default_rng(args.seed)
    out: dict = {
        "images": args.images,
        "image_size": args.size,
        "victim_lr": args.victim_lr,
        "attack": {
            "iterations": args.iterations,
            "step_size": args.step_size,
            "tv_weight": args.tv_weight,
            "restarts": args.restarts,
        },
        "baselines": {},
        "runs": [],
    }
    base: dict[str, dict[str, list[float]]] = {}
    for k in range(args.images):
        truth = images.x[k, 0]
        for name, guess in guesses(truth, images.x[k + 1, 0], grey, rng).items():
            base.setdefault(name, {"psnr": [], "ssim": []})
            base[name]["psnr"].append(psnr(truth, guess))
            base[name]["ssim"].append(ssim(truth, guess))
    out["baselines"] = {
        n: {"psnr": mean(v["psnr"]), "ssim": mean(v["ssim"])} for n, v in base.items()
    }
    best_guess_ssim = max(v["ssim"] for v in out["baselines"].values())
    for model_name in args.models:
        for dp_on in (False, True):
            dp = single_step_dp(dp_on)
            data = as_model_input(model_name, images)
            model = build_model(model_name, input_shape=data.input_shape)
            start = flat_parameters(model)
            scores: dict[str, list[float]] = {
                "psnr": [],
                "ssim": [],
                "label_correct": [],
                "seconds": [],
            }
            for k in range(args.images):
                one = type(data)(data.x[k : k + 1], data.y[k : k + 1])
                update = train_local(
                    model,
                    start,
                    one,
                    PrivacyLedger(dp, warn_if_off=False),
                    TrainConfig(args.victim_lr, seed=k, device="cpu"),
                )
                gradient = gradient_from_update(update.delta, args.victim_lr)
                if model_name == "imaging-features":
                    for key, value in feature_recovery(gradient, images.x[k]).items():
                        scores.setdefault(key, []).append(value)
                t = time.perf_counter()
                rec = invert_gradient(
                    model,
                    start,
                    gradient,
                    data.input_shape,
                    InversionConfig(
                        args.iterations, args.step_size, args.tv_weight, args.restarts, seed=k
                    ),
                )
                image = rec.image.reshape(images.x.shape[1:])[0]
                scores["seconds"].append(time.perf_counter() - t)
                scores["psnr"].append(psnr(images.x[k, 0], image))
                scores["ssim"].append(ssim(images.x[k, 0], image))
                scores["label_correct"].append(float(rec.label[0] == images.y[k]))
            run = {
                "model": model_name,
                "dp": dp_on,
                "noise_multiplier": dp.noise_multiplier,
                "epsilon": EPSILON if dp_on else None,
                **{key: mean(v) for key, v in scores.items()},
                "ssim_per_image": [round(s, 4) for s in scores["ssim"]],
                "no_better_than_noise": mean(scores["ssim"]) <= best_guess_ssim,
            }
            out["runs"].append(run)
            features = (
                (
                    f", features read off: cosine {run['feature_cosine']:.3f}, rel. error "
                    f"{run['feature_rel_error']:.3g}"
                )
                if "feature_cosine" in run
                else ""
            )
            print(
                f"  inversion {model_name:<4} {'DP eps 1' if dp_on else 'no DP':<8} PSNR {run['psnr']:6.2f} dB, "
                f"SSIM {run['ssim']:.3f}, label right {run['label_correct']:.2f}, "
                f"{run['seconds']:.1f} s/image{features}",
                flush=True,
            )
    out["best_guess_ssim"] = best_guess_ssim
    return out


def schedule(args, model_name: str, dp_on: bool) -> tuple[int, int, int, float]:
    """(rounds, local epochs, steps per epoch, learning rate) of the MIA campaign."""
    if model_name == "imaging-features":
        return (
            DP_SCHEDULE["rounds"],
            DP_SCHEDULE["local_epochs"],
            DP_SCHEDULE["steps_per_epoch"],
            DP_SCHEDULE["learning_rate"],
        )
    return args.rounds, args.epochs, args.steps, args.dp_lr if dp_on else args.lr


def campaign(
    args, model_name: str, dp_on: bool
) -> tuple[torch.nn.Module, list[LabelledData], LabelledData, float]:
    split = synthetic_imaging_split(
        args.sites,
        sizes=[args.site_size] * args.sites,
        n_test=args.test,
        size=args.size,
        seed=args.seed,
    )
    sites = [model_input(model_name, d) for d in split.hospitals.values()]
    rounds, epochs, steps, lr = schedule(args, model_name, dp_on)
    dp = DPConfig(
        enabled=dp_on,
        target_epsilon=EPSILON,
        delta=DELTA,
        rounds=rounds,
        local_epochs=epochs,
        steps_per_epoch=steps,
        max_grad_norm=1.0,
        accountant="rdp",
        count_noise=None,
    )  # as measured
    run = run_campaign(model_name, sites, dp, learning_rate=lr, rule="fedavg")
    return run.model, sites, model_input(model_name, split.test), run.epsilon_spent


def membership_part(args) -> dict:
    out: dict = {"sites": args.sites, "site_size": args.site_size, "runs": []}
    for model_name in args.mia_models:
        rng = np.random.default_rng(args.seed)
        for dp_on in (False, True):
            t = time.perf_counter()
            model, sites, test, spent = campaign(args, model_name, dp_on)
            train = type(sites[0]).concat(sites)
            pick = rng.choice(len(train), size=min(len(train), len(test)), replace=False)
            members = type(train)(train.x[pick], train.y[pick])
            mia = loss_threshold_attack(
                per_sample_losses(model, members), per_sample_losses(model, test)
            )
            scores = evaluate(model, test)
            rounds, epochs, steps, lr = schedule(args, model_name, dp_on)
            run = {
                "model": model_name,
                "dp": dp_on,
                "epsilon_spent": round(spent, 4) if dp_on else None,
                "rounds": rounds,
                "local_epochs": epochs,
                "steps_per_epoch": steps,
                "lr": lr,
                "mia_auc": round(mia.auc, 4),
                "mia_advantage": round(mia.advantage, 4),
                "members": mia.members,
                "non_members": mia.non_members,
                "test_accuracy": round(scores.accuracy, 4),
                "test_auc": round(scores.auc, 4),
                "seconds": round(time.perf_counter() - t, 1),
            }
            out["runs"].append(run)
            print(
                f"  membership {model_name:<16} {'DP eps 1' if dp_on else 'no DP':<8} AUC {run['mia_auc']:.3f}, "
                f"advantage {run['mia_advantage']:.3f}; model accuracy {run['test_accuracy']:.3f} / AUC "
                f"{run['test_auc']:.3f} ({run['seconds']} s)",
                flush=True,
            )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="a smoke run of about 2 minutes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=32, help="image side (pixels)")
    p.add_argument(
        "--models",
        nargs="+",
        default=["cnn", "mlp", "imaging-features"],
        choices=("cnn", "mlp", "imaging-features"),
        help="models whose updates are inverted",
    )
    p.add_argument(
        "--mia-models",
        nargs="+",
        default=["cnn", "imaging-features"],
        choices=("cnn", "imaging-features"),
        help="models whose final campaign model is attacked by membership inference",
    )
    p.add_argument("--images", type=int, default=8, help="victim images attacked per setting")
    p.add_argument("--victim-lr", type=float, default=0.1)
    p.add_argument("--iterations", type=int, default=1000)
    p.add_argument("--step-size", type=float, default=0.1)
    p.add_argument("--tv-weight", type=float, default=1e-4)
    p.add_argument("--restarts", type=int, default=1)
    p.add_argument("--sites", type=int, default=10)
    p.add_argument("--site-size", type=int, default=200)
    p.add_argument("--test", type=int, default=400)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--dp-lr", type=float, default=0.1)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    if args.quick:
        args.images, args.iterations, args.sites, args.site_size, args.rounds, args.test = (
            2,
            200,
            4,
            100,
            4,
            200,
        )
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore", message="Optimal order")
    torch.set_num_threads(1)
    started = time.perf_counter()
    print("gradient inversion (SYNTHETIC images):", flush=True)
    inversion = inversion_part(args)
    print("membership inference (SYNTHETIC images):", flush=True)
    membership = membership_part(args)
    result = {
        "command": " ".join(shlex.quote(a) for a in [os.path.relpath(sys.executable), *sys.argv]),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "data": "synthetic lesions (generated, not patient data)",
        "dp": {"epsilon": EPSILON, "delta": DELTA, "max_grad_norm": 1.0, "accountant": "rdp"},
        "inversion": inversion,
        "membership": membership,
        "targets": {
            "dp_reconstruction_no_better_than_noise": all(
                r["no_better_than_noise"] for r in inversion["runs"] if r["dp"]
            ),
            "dp_mia_auc_at_most_0.55": all(
                r["mia_auc"] <= 0.55 for r in membership["runs"] if r["dp"]
            ),
        },
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(
        "guesses without the update: "
        + ", ".join(
            f"{n} PSNR {v['psnr']:.2f} dB / SSIM {v['ssim']:.3f}"
            for n, v in inversion["baselines"].items()
        )
    )
    print(f"targets: {result['targets']}")
    out = args.out or Path(
        "benchmarks/results/bench_privacy_attacks" + ("_quick" if args.quick else "") + ".json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"total {result['seconds']} s; wrote {out}")


if __name__ == "__main__":
    main()
