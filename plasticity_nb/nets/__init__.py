"""The networks (ResNet-18 family, MLP) and which of their units a remedy may reset."""
