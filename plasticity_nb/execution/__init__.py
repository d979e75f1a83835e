"""Where and when runs train: the run store, the runner and its executors, time estimates, provenance."""
