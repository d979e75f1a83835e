"""What a run config reads about the networks, without torch: their names, input shape and default classes."""
from __future__ import annotations

MODELS = ("resnet", "mlp")  # build_model's choices (models.py)
IMAGE_SHAPE = (3, 32, 32)  # channels, height, width of an input image
# A net built without naming its dataset's classes has CIFAR-10's ten (the default dataset's; a test ties the two).
DEFAULT_CLASSES = 10
