"""Tiny, fast configs for tests (seconds on a CPU)."""
from plasticity_nb import Phase, RunConfig


def tiny_run(seed: int = 0, phases=None, **changes) -> RunConfig:
    phases = phases or (Phase(pool="half", epochs=1), Phase(pool="full", epochs=1))
    fields = dict(phases=phases, seed=seed, model="resnet", depth=1, width=4, train_subset=256, test_subset=200,
                  batch_size=32, precision="fp32")  # fp32: bf16 is emulated (slow) on AVX2-only CPUs
    return RunConfig(**{**fields, **changes})


def run_folders(out):
    """The stored runs of an output folder (not its locks, checkpoints or event log)."""
    root = out / "runs"
    return [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")] if root.exists() else []
