"""The models' names, without torch: config validation and the command line check a name
against these before anything loads the models (node.learning.models checks it matches)."""

MODEL_NAMES = ("logreg", "mlp", "mlp-wide", "cnn", "resnet18", "resnet50", "imaging-features")
IMAGE_MODELS = ("cnn", "resnet18", "resnet50", "imaging-features")
#: A fixed feature map plus a trained head: model_input maps the images once.
FEATURE_MODELS = ("imaging-features",)
#: ``mlp@<width>``: the two-hidden-layer MLP of that width (node.learning.models), e.g. the
#: 99,901-parameter ``mlp@300`` the simulator and the benchmarks size by parameter count.
SIZED_MLP = "mlp@"


def known_model(name: str) -> bool:
    """Whether ``name`` is one of :data:`MODEL_NAMES` or a sized MLP (``mlp@<width>``, width >= 1)."""
    width = name[len(SIZED_MLP) :] if name.startswith(SIZED_MLP) else ""
    return name in MODEL_NAMES or (width.isdigit() and int(width) >= 1)
