"""Learning: models, local DP-SGD training, privacy accounting, the secure RNG, fixed image
features and metrics.
"""
