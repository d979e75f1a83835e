"""Remedies for loss of plasticity, one module each: its settings (a registered `run.remedy.Remedy`, citing its
paper and reference code), when it acts (the hooks it builds), its maths and what it carries across a run.
builtin.py registers them (run/remedy.py's ACTING_ORDER says in what order they act); nets/units.py says, in
one place, which units ReDo and continual backprop may reset.
"""
