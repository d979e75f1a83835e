"""The files every batch on one output folder shares, written by many processes at once: claims.csv keeps every
writer's rows, report.md always matches claims.csv, the execution cache is replaced and restored whole, and a
figure or notebook copy is never seen half-written."""
import multiprocessing
from pathlib import Path

import pandas as pd

from plasticity_nb.analysis.claims import CLAIMS, COLUMNS, read_claims, replace_rows
from plasticity_nb.batch.notebook_cache import NotebookCache
from plasticity_nb.core.files import copy_atomic
from plasticity_nb.views.report import write_report

WRITERS, ROUNDS = 4, 15


def own_claims(writer: int) -> list[str]:
    return list(CLAIMS)[2 * writer: 2 * writer + 2]


def rows(writer: int, round_: int) -> pd.DataFrame:
    """Claim rows only this writer writes (its own claims), with this round in them."""
    row = dict(preset="smoke", test="difference", unit="pp", n_seeds=round_, effect=1.0, ci_low=0.0, ci_high=2.0,
               ci_level=0.95, sd=1.0, margin=float("nan"), p_value=0.5, mde_80=2.0, seeds_for_80=3,
               verdict="inconclusive", vs_paper="departs", premise="met: test", other_tests="", condition="")
    return pd.DataFrame([{**row, "claim": c, "notebook": CLAIMS[c].notebook, "statement": CLAIMS[c].statement}
                         for c in own_claims(writer)], columns=COLUMNS)


def write_claims(out: str, writer: int) -> None:
    for round_ in range(ROUNDS):
        replace_rows(out, "smoke", rows(writer, round_))


def cache_round_trips(out: str, writer: int) -> None:
    """Save an execution under one shared key, then restore it, over and over (as batches beside each other do)."""
    out = Path(out)
    cache = NotebookCache(out)
    executed = out / f"executed-{writer}.ipynb"
    executed.write_text("{}" + " " * 200_000 + f"{writer}")  # large enough for a half copy to be seen
    for _ in range(ROUNDS):
        cache.save("shared-key", executed, "01_warm_start_gap", "smoke", [])
        final = out / "notebooks" / "01_warm_start_gap.ipynb"
        cache.restore("shared-key", "smoke", final)
        assert final.stat().st_size == executed.stat().st_size, "a restored notebook is incomplete"


def copy_over_and_over(out: str, writer: int) -> None:
    source = Path(out) / f"source-{writer}"
    source.write_bytes(bytes([writer]) * 1_000_000)
    for _ in range(ROUNDS * 4):
        copy_atomic(source, Path(out) / "shared.png")


def in_parallel(work, out: Path) -> None:
    """`work(out, writer)` in WRITERS processes at once (forked: they use pandas and files, not torch's threads)."""
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=work, args=(str(out), w)) for w in range(WRITERS)]
    for p in processes:
        p.start()
    for p in processes:
        p.join()
    assert [p.exitcode for p in processes] == [0] * WRITERS


def test_concurrent_writers_of_claims_csv_keep_every_row(tmp_path):
    in_parallel(write_claims, tmp_path)
    table = read_claims(tmp_path)
    assert sorted(table.claim) == sorted(c for w in range(WRITERS) for c in own_claims(w))
    assert set(table.n_seeds) == {ROUNDS - 1}  # each writer's last round is what is left


def test_the_report_matches_claims_csv_whoever_wrote_last(tmp_path):
    in_parallel(write_claims, tmp_path)
    write_report(tmp_path, "smoke")
    page = (tmp_path / "report.md").read_text()
    assert all(f"### {c}: " in page for w in range(WRITERS) for c in own_claims(w))


def test_the_execution_cache_is_replaced_and_restored_whole_under_concurrent_batches(tmp_path):
    in_parallel(cache_round_trips, tmp_path)
    entries = [p for p in (tmp_path / "notebook-cache").iterdir()]
    assert [p.name for p in entries] == ["shared-key"]  # no temporary entry left


def test_a_shared_file_is_replaced_whole_or_not_at_all(tmp_path):
    in_parallel(copy_over_and_over, tmp_path)
    data = (tmp_path / "shared.png").read_bytes()
    assert len(data) == 1_000_000 and len(set(data)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.png", *sorted(f"source-{w}" for w in range(WRITERS))]


def hold_one_and_wait_for_the_other(out: str, writer: int) -> None:
    """One thread holds lock A (B) a while; another, meanwhile, waits for B (A), which the other process holds."""
    import threading
    import time

    from plasticity_nb.core.files import locked

    mine, theirs = (Path(out) / f"{name}.lock" for name in ("ab" if writer % 2 == 0 else "ba"))

    def hold():
        with locked(mine):
            time.sleep(1.5)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.5)
    with locked(theirs):  # the kernel sees two processes each waiting for the other's lock: EDEADLK
        pass
    holder.join()


def test_two_batches_whose_threads_hold_each_others_next_lock_both_go_on(tmp_path):
    """A batch's training thread holds a run's lock while its notebook thread waits for the cache's, and another
    batch the other way round: no real cycle, though the kernel's check (per process) refuses the wait."""
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=hold_one_and_wait_for_the_other, args=(str(tmp_path), w)) for w in (0, 1)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=60)
    assert [p.exitcode for p in processes] == [0, 0]
