"""The bottom layer, imported by most others: validated configs with stable keys, file safety, paths, the version."""
