"""What curvature and noise probes cost: one quick-preset tuning run with the probes of notebook 09 (at its
quick preset's probe epochs) against the same run without them, timed in the same process.

    python -m benchmarks.probe_overhead [--device cpu]
"""
import argparse
import time

from benchmarks.common import describe_machine
from plasticity_nb import load_cifar10
from plasticity_nb.studies import two_phases
from plasticity_nb.training.runtime import resolve_device
from plasticity_nb.training.train import train_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    device = resolve_device(args.device)
    data = load_cifar10(device=device)
    study = two_phases.Config.from_preset("quick")
    with_probes = study.scratch(0, data.data_id, tune=dict(probe_epochs=tuple(study.probe_epochs)),
                                probes=study.settings())
    without = study.scratch(0, data.data_id)
    print(f"# {describe_machine(device)}; quick preset scratch run (ResNet-18 w{study.width}, {study.train_subset} "
          f"images, {study.tune_epochs} epochs); probes at epochs {list(study.probe_epochs)}: top eigenvalue "
          f"(<= {study.eigen_iterations} power iterations), trace ({study.trace_samples} probes), per-example noise "
          f"on {study.probe_examples} images")
    times = {}
    for name, config in (("without probes", without), ("with probes", with_probes)):
        started = time.perf_counter()
        outcome = train_run(config, data, device)
        times[name] = time.perf_counter() - started
        probe_seconds = sum(p["probe_seconds"] for p in outcome.probes)
        print(f"{name}: {times[name]:6.1f} s (probes {probe_seconds:5.1f} s)")
    print(f"ratio with / without: {times['with probes'] / times['without probes']:.2f}x (goal <= 1.5x)")


if __name__ == "__main__":
    main()
