"""Models a hospital trains, selected by name, and their flat float32 parameter vectors.

All models output one logit per sample (binary classification in v1) and are
Opacus-compatible: no BatchNorm (GroupNorm instead), no in-place activations, no parameter
shared between layers. ``build_model`` seeds the initialization, so every peer that builds a
model from the same name, input shape and seed holds bit-identical initial weights.

| name       | input                 | what it is |
|------------|-----------------------|------------|
| `logreg`   | features              | one linear layer (zero-initialized) |
| `mlp`      | features              | two hidden layers of 32, GELU |
| `mlp-wide` | features              | two hidden layers of 985, GELU: about 1.0M parameters on 30 features (benchmarks) |
| `cnn`      | channels x H x W      | three 3x3 conv blocks (16/32/64 channels, GroupNorm), global max-pool |
| `resnet18` | channels x H x W      | ResNet-18 (He et al., 2016) with GroupNorm (Wu & He, 2018) |
| `resnet50` | channels x H x W      | ResNet-50, bottleneck blocks, GroupNorm |
| `imaging-features` | 1 x S x S (or its features) | one linear layer on the fixed features of :mod:`node.learning.imagefeatures` (scattering + blob statistics, publicly whitened): the DP imaging model |

`imaging-features` follows Tramer & Boneh (2021): only the linear head is trained and shared
(32 parameters on the default 31 features), the feature map is fixed and spends no privacy. Its forward takes images (and
maps them) or their feature rows; :func:`model_input` maps a data set's images once, as a loader
would, so training does not recompute the scattering every step.

ResNets written here because torchvision does not install beside this torch. Inputs smaller
than 64 pixels on a side get a 3x3 stride-1 stem without max-pooling (the CIFAR variant), so
a 28x28 MedMNIST image is not pooled away.

Updates travel as one flat float32 vector in the order of ``model.state_dict()``;
:func:`flat_parameters` and :func:`load_flat_parameters` are the only two places that know
that order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from node.data.samples import ImageData, LabelledData
from node.learning.modelnames import FEATURE_MODELS, IMAGE_MODELS, MODEL_NAMES, SIZED_MLP

__all__ = [
    "build_model",
    "MODEL_NAMES",
    "IMAGE_MODELS",
    "FEATURE_MODELS",
    "flat_parameters",
    "load_flat_parameters",
    "select_device",
    "model_input",
]


class LogisticRegression(nn.Module):
    """One linear layer producing a logit; the classical baseline for tabular cohorts."""

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_features, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).squeeze(-1)


class FeatureHead(LogisticRegression):
    """A linear head on the fixed image features of :mod:`node.learning.imagefeatures`: N x 1 x S x S
    images are mapped on the fly, N x d feature rows (mapped once by :func:`model_input`) go
    straight to the head. Same parameters, in the same order, as ``logreg`` on d features."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:
            from node.learning.imagefeatures import image_features

            x = image_features(x)
        return super().forward(x)


class MLP(nn.Module):
    """Two hidden layers with GELU; LayerNorm-free so per-sample clipping stays exact."""

    def __init__(self, n_features: int, hidden: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_features, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


class WideMLP(MLP):
    """The MLP at width 985: 1,002,731 parameters on the 30 breast-cancer features."""

    def __init__(self, n_features: int) -> None:
        super().__init__(n_features, hidden=985)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(32, channels // 2 if channels < 32 else 32), channels)


class SmallCNN(nn.Module):
    """Three conv blocks (conv 3x3, GroupNorm, ReLU, 2x2 max-pool), global max-pool, linear head."""

    def __init__(self, in_channels: int, widths: Sequence[int] = (16, 32, 64)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_channels
        for w in widths:
            layers += [nn.Conv2d(prev, w, 3, padding=1), _norm(w), nn.ReLU(), nn.MaxPool2d(2)]
            prev = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveMaxPool2d(1)  # a small lesion anywhere: max, not mean
        self.head = nn.Linear(prev, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.features(x)), 1)).squeeze(-1)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.gn1 = _norm(width)
        self.conv2 = nn.Conv2d(width, cout, 3, 1, 1, bias=False)
        self.gn2 = _norm(cout)
        self.act1, self.act2 = nn.ReLU(), nn.ReLU()
        self.shortcut = _shortcut(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.gn1(self.conv1(x)))
        out = self.gn2(self.conv2(out))
        return self.act2(out + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.gn1 = _norm(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.gn2 = _norm(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.gn3 = _norm(cout)
        self.act1, self.act2, self.act3 = nn.ReLU(), nn.ReLU(), nn.ReLU()
        self.shortcut = _shortcut(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.gn1(self.conv1(x)))
        out = self.act2(self.gn2(self.conv2(out)))
        out = self.gn3(self.conv3(out))
        return self.act3(out + self.shortcut(x))


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), _norm(cout))


class ResNet(nn.Module):
    """ResNet with GroupNorm in place of BatchNorm, one-logit head."""

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        depths: Sequence[int],
        in_channels: int,
        small_input: bool,
    ) -> None:
        super().__init__()
        if small_input:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False), _norm(64), nn.ReLU()
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False),
                _norm(64),
                nn.ReLU(),
                nn.MaxPool2d(3, 2, 1),
            )
        stages: list[nn.Module] = []
        cin = 64
        for i, (width, depth) in enumerate(zip((64, 128, 256, 512), depths, strict=False)):
            blocks = []
            for j in range(depth):
                blocks.append(block(cin, width, 2 if (j == 0 and i > 0) else 1))
                cin = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(cin, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():  # zero-init the last norm of each block: starts as identity
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.gn2.weight)
            elif isinstance(m, Bottleneck):
                nn.init.zeros_(m.gn3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.stages(self.stem(x))), 1)).squeeze(-1)


def _tabular(cls):
    def make(n_features: int | None, input_shape: tuple[int, ...] | None) -> nn.Module:
        if n_features is None:
            if input_shape is None or len(input_shape) != 1:
                raise ValueError(f"{cls.__name__} needs n_features (or a 1-D input_shape)")
            n_features = input_shape[0]
        return cls(int(n_features))

    return make


def _image(factory):
    def make(n_features: int | None, input_shape: tuple[int, ...] | None) -> nn.Module:
        if input_shape is None or len(input_shape) != 3:
            raise ValueError("image models need input_shape=(channels, height, width)")
        c, h, w = input_shape
        if min(h, w) < 8:
            raise ValueError(f"images of {h}x{w} are too small for a convolutional model (>= 8x8)")
        return factory(c, min(h, w) < 64)

    return make


def _features(n_features: int | None, input_shape: tuple[int, ...] | None) -> nn.Module:
    from node.learning.imagefeatures import feature_dim

    d = feature_dim()
    if input_shape is not None and len(input_shape) == 3:
        c, h, w = input_shape
        if c != 1 or h != w or h % 4 or h < 16:
            raise ValueError(
                f"imaging-features needs single-channel square images with a side that is a multiple "
                f"of 4 and >= 16, got {c}x{h}x{w}"
            )
        return FeatureHead(d)
    given = input_shape[0] if input_shape is not None and len(input_shape) == 1 else n_features
    if given != d:
        raise ValueError(
            f"imaging-features takes 1 x S x S images or their {d} features, got "
            f"{input_shape or n_features}"
        )
    return FeatureHead(d)


_MODELS = {
    "logreg": _tabular(LogisticRegression),
    "mlp": _tabular(MLP),
    "mlp-wide": _tabular(WideMLP),
    "cnn": _image(lambda c, small: SmallCNN(c)),
    "resnet18": _image(lambda c, small: ResNet(BasicBlock, (2, 2, 2, 2), c, small)),
    "resnet50": _image(lambda c, small: ResNet(Bottleneck, (3, 4, 6, 3), c, small)),
    "imaging-features": _features,
}
if tuple(_MODELS) != MODEL_NAMES:  # the light list the config and the CLI check names against
    raise AssertionError(
        f"node.learning.modelnames lists {MODEL_NAMES}, the models are {tuple(_MODELS)}"
    )


def mlp_for_parameters(parameters: int, n_features: int) -> str:
    """The ``mlp@<width>`` name whose parameter count is closest to ``parameters``.

    :class:`MLP` holds ``h*f + h`` (first layer) ``+ h*h + h`` (second) ``+ h + 1`` (head)
    parameters for width ``h`` and ``f`` features: ``h^2 + (f + 3) h + 1``.
    """
    if parameters < n_features + 5:
        raise ValueError(f"an MLP on {n_features} features needs more than {parameters} parameters")
    b = n_features + 3
    width = max(1, round((-b + math.sqrt(b * b + 4 * (parameters - 1))) / 2))
    return f"{SIZED_MLP}{width}"


def _sized_mlp(name: str):
    if not name.startswith(SIZED_MLP):
        return None
    width = name[len(SIZED_MLP) :]
    if not width.isdigit() or int(width) < 1:
        raise ValueError(f"a sized MLP is named mlp@<width>, got {name!r}")
    return _tabular(lambda f: MLP(f, hidden=int(width)))


def model_input(name: str, data: LabelledData) -> LabelledData:
    """What model ``name`` trains on: for a feature model, ``data``'s images mapped once to their
    features (the map is fixed, so this equals mapping them in every forward pass); else ``data``."""
    if name in FEATURE_MODELS and isinstance(data, ImageData):
        from node.learning.imagefeatures import to_features

        return to_features(data)
    return data


def build_model(
    name: str,
    n_features: int | None = None,
    *,
    input_shape: Sequence[int] | None = None,
    n_classes: int = 2,
    seed: int = 0,
) -> nn.Module:
    """Build a model by its config name with a seeded initialization (same on every peer).

    Tabular models take ``n_features`` (``build_model("logreg", 30)``); image models take
    ``input_shape=(channels, height, width)``. ``n_classes`` must be 2 in v1 (one logit).
    """
    try:
        make = _sized_mlp(name) or _MODELS[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}"
        ) from None
    if n_classes != 2:
        raise ValueError(
            f"v1 trains binary classifiers (one logit); n_classes={n_classes} is not supported"
        )
    shape = None if input_shape is None else tuple(int(s) for s in input_shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make(n_features, shape)


def select_device(preference: str = "auto") -> torch.device:
    """``"auto"``: CUDA when torch sees a GPU, else CPU; or any name torch accepts."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


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
        new_state[key] = chunk.view_as(tensor).to(dtype=tensor.dtype, device=tensor.device)
        offset += n
    model.load_state_dict(new_state)
