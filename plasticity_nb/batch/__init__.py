"""The command line: notebooks executed in batch with their runs, and the notebook execution cache."""
