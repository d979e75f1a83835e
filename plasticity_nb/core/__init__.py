"""The bottom layer, imported by every other: validated configs with stable keys, file safety, paths, the version."""
