"""The training loop, single runs and seed ensembles, and the hooks that act during a phase."""
