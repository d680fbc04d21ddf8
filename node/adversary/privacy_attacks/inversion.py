"""Gradient inversion of one single-batch update: "Inverting Gradients" (Geiping, Bauermeister,
Droege and Moeller, NeurIPS 2020), Sec. 4.

The attacker holds the global parameters the victim started from, the victim's update and its
learning rate (all public to a peer), so it recovers the gradient ``g = -delta / lr`` of one
SGD step (:func:`gradient_from_update`). It then optimizes a dummy image ``x'`` so that the
model's gradient on ``x'`` points like ``g``:

    minimize  1 - <grad L(x', y), g> / (||grad L(x', y)|| ||g||)  +  alpha * TV(x')

with Adam on the signed gradient of that loss, step size decayed by 10x at 3/8, 5/8 and 7/8 of
the iterations, pixels kept in [0, 1], and the best of ``restarts`` random starts by final
loss (all as in the paper). The label comes from the update itself: for one sample and a
binary logit, dL/d(head bias) = sigmoid(z) - y is negative exactly when y = 1 (the iDLG
observation, Zhao et al. 2020, applied to a sigmoid output).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from node.learning.models import load_flat_parameters

__all__ = [
    "InversionConfig",
    "InversionResult",
    "gradient_from_update",
    "invert_gradient",
    "linear_head_input",
]


@dataclass(frozen=True)
class InversionConfig:
    iterations: int = 1000
    step_size: float = 0.1
    tv_weight: float = 1e-3
    restarts: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.iterations < 1 or self.restarts < 1:
            raise ValueError("iterations and restarts must be >= 1")
        if not self.step_size > 0 or self.tv_weight < 0:
            raise ValueError("step_size must be > 0 and tv_weight >= 0")


@dataclass(frozen=True)
class InversionResult:
    image: np.ndarray  # float32, (batch, channels, height, width) in [0, 1]
    label: np.ndarray  # float32, the labels the attack used
    loss: float  # final gradient-matching loss of the kept restart


def gradient_from_update(delta: np.ndarray, learning_rate: float) -> np.ndarray:
    """The gradient of one plain SGD step: ``delta = -lr * g``."""
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
    return (-np.asarray(delta, dtype=np.float64) / learning_rate).astype(np.float32)


def linear_head_input(gradient: np.ndarray) -> np.ndarray:
    """The input of a one-logit linear model, read exactly off its gradient on one sample.

    For ``z = <w, f> + b`` and any loss of ``z``, ``dL/dw = dL/dz * f`` and ``dL/db = dL/dz``, so
    ``f = (dL/dw) / (dL/db)`` (Phong et al. 2017; the analytic attack on a fully connected first
    layer). ``gradient`` is ``[dL/dw, dL/db]`` in the model's parameter order (weights, then bias).
    """
    g = np.asarray(gradient, dtype=np.float64)
    if g.ndim != 1 or g.size < 2:
        raise ValueError(
            f"need a flat gradient of a linear model (weights then bias), got shape {g.shape}"
        )
    if g[-1] == 0:
        raise ValueError(
            "the bias gradient is 0: the sample's loss was flat, its input cannot be read off"
        )
    return (g[:-1] / g[-1]).astype(np.float32)


def _split(flat: torch.Tensor, params: list[nn.Parameter]) -> list[torch.Tensor]:
    out, i = [], 0
    for p in params:
        out.append(flat[i : i + p.numel()].view_as(p))
        i += p.numel()
    if i != flat.numel():
        raise ValueError(f"gradient has {flat.numel()} entries, the model {i} parameters")
    return out


def _label_from_gradient(grads: list[torch.Tensor]) -> float:
    """Sign of the last parameter's gradient (the one-logit head's bias): sigmoid(z) - y."""
    return 1.0 if float(grads[-1].sum()) < 0 else 0.0


def _total(terms: Iterable[torch.Tensor]) -> torch.Tensor:
    """The scalar tensors added left to right (as ``sum`` does: the same bits), as a tensor."""
    return sum(terms, torch.zeros(()))


def _total_variation(x: torch.Tensor) -> torch.Tensor:
    if x.dim() < 4:  # flattened inputs (an MLP on pixels): no image grid to be smooth on
        return x.new_zeros(())
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (
        x[..., :, 1:] - x[..., :, :-1]
    ).abs().mean()


def invert_gradient(
    model: nn.Module,
    params: np.ndarray,
    gradient: np.ndarray,
    image_shape: tuple[int, ...],
    config: InversionConfig = InversionConfig(),
    *,
    batch: int = 1,
    label: np.ndarray | None = None,
) -> InversionResult:
    """Reconstruct ``batch`` images of ``image_shape`` whose gradient at ``params`` matches ``gradient``."""
    load_flat_parameters(model, params)
    model.eval()  # GroupNorm has no running statistics; eval only fixes any dropout
    weights = list(model.parameters())
    target = [
        t.detach() for t in _split(torch.as_tensor(np.asarray(gradient, dtype=np.float32)), weights)
    ]
    if label is None:
        if batch != 1:
            raise ValueError(
                "labels can be read off the update only for a batch of one; pass label="
            )
        label = np.array([_label_from_gradient(target)], dtype=np.float32)
    y = torch.as_tensor(np.asarray(label, dtype=np.float32))
    target_norm = torch.sqrt(_total((t * t).sum() for t in target))
    rng = torch.Generator().manual_seed(config.seed)
    best: tuple[float, torch.Tensor] | None = None
    for _ in range(config.restarts):
        x = torch.rand((batch, *image_shape), generator=rng, requires_grad=True)
        opt = torch.optim.Adam([x], lr=config.step_size)
        n = config.iterations
        sched = torch.optim.lr_scheduler.MultiStepLR(
            opt, milestones=[3 * n // 8, 5 * n // 8, 7 * n // 8], gamma=0.1
        )
        loss_value = float("inf")
        for _ in range(n):
            opt.zero_grad()
            loss_fn = nn.functional.binary_cross_entropy_with_logits(model(x), y)
            grads = torch.autograd.grad(loss_fn, weights, create_graph=True)
            dot = _total((g * t).sum() for g, t in zip(grads, target, strict=False))
            norm = torch.sqrt(_total((g * g).sum() for g in grads))
            loss = 1 - dot / (norm * target_norm + 1e-12) + config.tv_weight * _total_variation(x)
            loss.backward()
            if x.grad is None:
                raise RuntimeError("gradient inversion: the candidate images got no gradient")
            x.grad.sign_()
            opt.step()
            sched.step()
            with torch.no_grad():
                x.clamp_(0.0, 1.0)
            loss_value = float(loss.detach())
        if best is None or loss_value < best[0]:
            best = (loss_value, x.detach().clone())
    assert best is not None
    return InversionResult(best[1].numpy().astype(np.float32), y.numpy(), best[0])
