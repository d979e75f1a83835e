"""What a run config reads about the networks, without torch: their names and default number of classes."""
from __future__ import annotations

MODELS = ("resnet", "mlp")  # build_model's choices (models.py)
# A net built without naming its dataset's classes has CIFAR-10's ten (the default dataset's; a test ties the two).
DEFAULT_CLASSES = 10
