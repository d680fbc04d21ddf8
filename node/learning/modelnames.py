"""The models' names, without torch: config validation and the command line check a name
against these before anything loads the models (node.learning.models checks it matches)."""

MODEL_NAMES = ("logreg", "mlp", "mlp-wide", "cnn", "resnet18", "resnet50", "imaging-features")
IMAGE_MODELS = ("cnn", "resnet18", "resnet50", "imaging-features")
#: A fixed feature map plus a trained head: model_input maps the images once.
FEATURE_MODELS = ("imaging-features",)
