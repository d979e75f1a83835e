"""Remedies for loss of plasticity, as pure functions over modules, tensors and optimisers, and their settings.

Each module holds one remedy and cites its paper and reference code; a per-phase or per-step hook of the
training loop calls them (training/remedy_hooks.py). nets/units.py says, in one place, which units ReDo and
continual backprop may reset.
"""
