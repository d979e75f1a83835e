"""Export a bundle of an output folder's runs, without weights, to explore without training (docs/bundle.md).

    python -m tools.make_bundle SRC DST [--results DIR] [--command "..."] [--cpu "..."]

Copies SRC's runs (every file but model.pt and remedies.pt), claims.csv, report.md, figures/ and the settled
ledgers (from --results where given: the committed copy of those files), writes DST/bundle.json, checks the bundle
whole and prints its size. The committed bundle was made with

    python -m tools.make_bundle /work/confirm-main-epyc-2026-12-06 results/quick \\
        --results benchmarks/confirm-main-cpu-epyc-2026-12-06 \\
        --command "python -m plasticity_nb run --stage settle" \\
        --cpu "a 2-core AMD EPYC with avx512_bf16 and avx512_vnni (no AMX)"
"""
import argparse
import sys

from plasticity_nb.execution import bundle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.make_bundle", description=__doc__.splitlines()[0])
    parser.add_argument("src", help="an output folder (its runs/, claims.csv, report.md, figures/, ledgers)")
    parser.add_argument("dst", help="the new bundle's folder (must not exist)")
    parser.add_argument("--results", help="take claims.csv, report.md, figures/ and the ledgers from here instead")
    parser.add_argument("--command", help="the command that made SRC's runs, as the banner shows it")
    parser.add_argument("--cpu", help="the machine in words (the runs' provenance names the CPU model only)")
    args = parser.parse_args(argv)
    marker = bundle.export(args.src, args.dst, args.results, args.command, args.cpu)
    found = bundle.problems(args.dst)
    for problem in found:
        print(f"problem: {problem}", file=sys.stderr)
    print(f"bundle {args.dst}: {len(marker['runs'])} runs (seeds {bundle.seed_ranges(marker['seeds'])}), "
          f"{len(marker['files'])} results files, {bundle.size_of(args.dst) / 1e6:.2f} MB, weights omitted")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
