"""Models a hospital trains, and their flat float32 parameter vectors.

Every model here is Opacus-compatible (no BatchNorm). Updates travel as one flat float32
vector in the order of ``model.state_dict()``; :func:`flat_parameters` and
:func:`load_flat_parameters` are the only two places that know that order.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["build_model", "MODEL_NAMES", "flat_parameters", "load_flat_parameters"]


class LogisticRegression(nn.Module):
    """One linear layer producing a logit; the classical baseline for tabular cohorts."""

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_features, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).squeeze(-1)


class MLP(nn.Module):
    """Two hidden layers with GELU; LayerNorm-free so per-sample clipping stays exact."""

    def __init__(self, n_features: int, hidden: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_features, hidden), nn.GELU(),
            nn.Linear(hidden, hidden), nn.GELU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


_MODELS = {"logreg": LogisticRegression, "mlp": MLP}
MODEL_NAMES = tuple(_MODELS)


def build_model(name: str, n_features: int, *, seed: int = 0) -> nn.Module:
    """Build a model by its config name with a seeded initialization (same on every peer)."""
    try:
        cls = _MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}") from None
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return cls(n_features)


def flat_parameters(model: nn.Module) -> np.ndarray:
    """All floating-point state of ``model`` as one float32 vector, in state_dict order."""
    tensors = [t.detach().reshape(-1).to(torch.float32).cpu() for t in model.state_dict().values()]
    return torch.cat(tensors).numpy().copy()


def load_flat_parameters(model: nn.Module, flat: np.ndarray) -> None:
    """Inverse of :func:`flat_parameters`; raises ValueError when the size does not match."""
    state = model.state_dict()
    expected = sum(t.numel() for t in state.values())
    if flat.ndim != 1 or flat.size != expected:
        raise ValueError(f"parameter vector has {flat.size} values, the model needs {expected}")
    offset = 0
    new_state = {}
    for key, tensor in state.items():
        n = tensor.numel()
        chunk = torch.from_numpy(np.ascontiguousarray(flat[offset : offset + n], dtype=np.float32))
        new_state[key] = chunk.view_as(tensor).to(tensor.dtype)
        offset += n
    model.load_state_dict(new_state)
