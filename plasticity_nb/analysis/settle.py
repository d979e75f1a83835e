"""`run --settle`: settle each claim at planned looks of a group-sequential design, its verdict frozen where it stops.

Adding seeds after looking and testing again inflates the error rate (report.md says by how much); a `Design`
(sequential.py) fixes the looks, the boundaries and every stopping rule before any run. This module is the
batch's loop around it:

- look k runs every notebook that still has an open claim with seeds [first, first + n_k) (the batch's own
  machinery: the runs already stored are reused, so a look trains only its new seeds), then computes each
  claim of those notebooks from the stored runs and decides every claim still open with `Design.decide`;
- a claim that stops is frozen in the ledger `<out>/settled-<preset>.json` (written atomically after every
  look) and never decided again: re-running the same command continues from the ledger, and a command with
  another design, first seed, selection or parameters is refused, since its looks would not be the planned ones;
- the seed budget is the design's (a look it cannot reach never runs); the time budget is checked after each
  look (this command's wall time plus the ledger's), and when it is spent that look is the last: every claim
  still open gets `decide(final=True)`, i.e. 'stopped by budget: not resolved' unless a boundary was crossed;
- a claim the design cannot decide (a correlation across conditions, tests of mixed kinds or margins, or a
  definition changed after seeing these seeds) is listed as not settled sequentially, with why.

The premise policy is the design's (sequential.py): evaluated at every look on all seeds so far; 'not met' stops
the claim ('premise not met', frozen); 'uncertain' makes no decision at that look ('premise uncertain' at the last).
Its planning is the premise rule's (premises.pass_chance): report.md states, per claim, the chance that arms which
truly fit pass at the last look, and flags a claim under premises.WANTED_PASS with the seeds that would reach it.
Nothing here trains or executes: the caller (cli.py) passes how a look runs and how claims are computed, which
keeps the decision path testable on constructed looks.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from ..core.files import locked, remove_stale_temporaries, write_atomic
from ..data.datasets import DEFAULT_DATASET
from .claims import (
    ADDED,
    CLAIMS,
    COLUMNS,
    SETTLED,
    SMALLER,
    ClaimResult,
    claims_lock,
    registry_hash,
    relation,
    replace_rows,
    sesoi_of,
    standing,
    verdict_words,
)
from .premises import PLANNING_MARGIN_SD, TARGET_PROTOCOL, WANTED_PASS, pass_chance, seeds_to_pass
from .sequential import (
    DIFFERENCE,
    FLAG_CHANCE,
    FUTILE,
    KINDS,
    OPEN,
    PREMISE_NOT_MET,
    Decision,
    Design,
    Operating,
    difference_power,
    spending_name,
    void_chance,
)
from .stats import power_difference, seeds_for

LEDGER_VERSION = 1
START, END = "<!-- settled sequentially: start -->", "<!-- settled sequentially: end -->"  # report.md markers


class SettleError(RuntimeError):
    """The ledger does not belong to this command, or a look could not be completed; the message says which."""


@dataclasses.dataclass(frozen=True)
class Notebook:
    """A selected notebook as the loop sees it: its id (for the runner), stem (its claims) and the preset's
    smallest effect of interest (the futility rule's sesoi for claims without their own)."""

    id: str
    stem: str
    smallest_effect: float | None = None


@dataclasses.dataclass(frozen=True)
class Settled:
    """A claim's frozen verdict: where it stopped and why."""

    claim: str
    verdict: str
    look: int  # 1-based
    seeds: int  # the look's planned seed count
    n: int  # the fewest finite pairs over its conditions
    reason: str
    interval: tuple[float, float] | None  # the weakest condition's repeated CI (log ratio for a ratio claim)
    log_scale: bool = False
    registry: str = ""
    estimate: float | None = None  # the weakest condition's mean (log ratio for a ratio claim); None: older ledgers
    test: str = ""  # the claim's test kind (difference, equivalence, bound); "" in older ledgers
    margin: float | None = None  # an equivalence's or a bound's margin


@dataclasses.dataclass(frozen=True)
class Ledger:
    """What a settle command fixed (design, first seed, preset, notebooks, parameters) and what it has settled."""

    design: Design
    first_seed: int
    preset: str
    notebooks: tuple[str, ...]
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # the config parameters (JSON values)
    looks_done: int = 0
    elapsed_s: float = 0.0  # wall time of completed looks, over every command that continued this ledger
    settled: Mapping[str, Settled] = dataclasses.field(default_factory=dict)
    unsettled: Mapping[str, str] = dataclasses.field(default_factory=dict)  # claim -> why the design cannot decide it
    arms: Mapping[str, int] = dataclasses.field(default_factory=dict)  # claim -> arms its premise checks (last look)
    # claim -> how its runs trained (Premise.protocol): train-to-target premises are planned by their void chance
    protocols: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        return {"design": dataclasses.asdict(self.design), "first_seed": self.first_seed, "preset": self.preset,
                "notebooks": list(self.notebooks), "params": json.loads(json.dumps(dict(self.params)))}

    def is_open(self, claim: str) -> bool:
        return claim not in self.settled and claim not in self.unsettled

    def seeds(self, look: int) -> tuple[int, ...]:
        return tuple(range(self.first_seed, self.first_seed + self.design.looks[look - 1]))


def ledger_path(out_dir: str | Path, preset: str) -> Path:
    return Path(out_dir) / f"settled-{preset}.json"


def to_json(ledger: Ledger) -> str:
    body = {"version": LEDGER_VERSION, **ledger.identity(), "looks_done": ledger.looks_done,
            "elapsed_s": round(ledger.elapsed_s, 3), "unsettled": dict(ledger.unsettled), "arms": dict(ledger.arms),
            "protocols": dict(ledger.protocols),
            "claims": {c: {**dataclasses.asdict(s), "interval": list(s.interval) if s.interval else None}
                       for c, s in ledger.settled.items()}}
    return json.dumps(body, indent=1, allow_nan=False) + "\n"


def from_json(text: str) -> Ledger:
    body = json.loads(text)
    design = body["design"]
    settled = {c: Settled(**{**s, "interval": tuple(s["interval"]) if s["interval"] else None})
               for c, s in body["claims"].items()}
    return Ledger(Design(**{**design, "looks": tuple(design["looks"])}), body["first_seed"], body["preset"],
                  tuple(body["notebooks"]), body["params"], body["looks_done"], body["elapsed_s"], settled,
                  body["unsettled"], body.get("arms", {}), body.get("protocols", {}))


def read_ledger(out_dir: str | Path, preset: str) -> Ledger | None:
    path = ledger_path(out_dir, preset)
    return from_json(path.read_text()) if path.exists() else None


def write_ledger(out_dir: str | Path, ledger: Ledger) -> None:
    path = ledger_path(out_dir, ledger.preset)
    remove_stale_temporaries(path)
    write_atomic(path, to_json(ledger))


def resume(out_dir: str | Path, fresh: Ledger) -> Ledger:
    """The stored ledger when it belongs to this command (`fresh` is the command's own, empty one), else `fresh`
    when there is none; a ledger of another design, first seed, selection or parameters is refused."""
    stored = read_ledger(out_dir, fresh.preset)
    if stored is None:
        return fresh
    ours, theirs = fresh.identity(), stored.identity()
    differ = [name for name in ours if ours[name] != theirs[name]]
    if differ:
        details = "; ".join(f"{name}: ledger {theirs[name]!r}, this command {ours[name]!r}" for name in differ)
        raise SettleError(f"{ledger_path(out_dir, fresh.preset)} was made by another settle command ({details}). "
                          "Its looks were planned with that design: continue it with the same options, or settle "
                          "into another --out folder")
    return stored


def claims_of(stem: str) -> tuple[str, ...]:
    return tuple(c.id for c in CLAIMS.values() if c.notebook == stem)


def open_notebooks(ledger: Ledger, notebooks: Sequence[Notebook]) -> list[Notebook]:
    return [nb for nb in notebooks if any(ledger.is_open(c) for c in claims_of(nb.stem))]


def why_not_sequential(result: ClaimResult, preset: str) -> str | None:
    """Why the design cannot decide this claim (None: it can)."""
    tests = result.tests
    kinds, margins = {t.kind for t in tests}, {t.margin for t in tests}
    if len(kinds) > 1 or len(margins) > 1:
        return "its tests differ in kind or margin: one design table cannot decide them together"
    if tests[0].kind not in KINDS:
        return f"a {tests[0].kind} test has no sequential boundaries (the design handles {', '.join(KINDS)})"
    change, seen = standing(result.claim, preset, result.seeds, result.premise.protocol)
    if change is not None and seen:
        return (f"its definition was {'added' if change.kind == ADDED else 'changed'} {change.date} after seeing "
                "some of these seeds: a settled verdict on them would be post hoc (use fresh seeds, --first-seed)")
    return None


def decide_claim(design: Design, result: ClaimResult, look: int, final: bool,
                 smallest_effect: float | None) -> Decision:
    """One claim's decision at `look` from all its seeds so far: kind, margin and values from its tests (every one
    a condition that must hold), the sesoi as claims.planned takes it (on the log scale for a ratio), its premise."""
    tests = result.tests
    kind = tests[0].kind
    labels = [t.label or f"test {i + 1}" for i, t in enumerate(tests)]
    labels = labels if len(set(labels)) == len(labels) else [f"{i + 1}: {label}" for i, label in enumerate(labels)]
    differences = tests[0].values if len(tests) == 1 else {label: t.values for label, t in zip(labels, tests)}
    sesoi = sesoi_of(result, smallest_effect) if kind == DIFFERENCE else math.nan
    sesoi = math.log1p(sesoi / 100) if tests[0].log_scale and math.isfinite(sesoi) else sesoi
    return design.decide(kind, differences, look, margin=None if kind == DIFFERENCE else tests[0].margin,
                         sesoi=sesoi if math.isfinite(sesoi) else None, premise=result.premise.state, final=final)


def frozen(decision: Decision, result: ClaimResult, seeds: int) -> Settled:
    interval, estimate = None, None
    if decision.conditions:
        weakest = min(decision.conditions, key=lambda c: c.statistic - c.boundary)
        if math.isfinite(weakest.ci_low) and math.isfinite(weakest.ci_high):
            interval = (round(weakest.ci_low, 4), round(weakest.ci_high, 4))
        estimate = round(weakest.mean, 4) if math.isfinite(weakest.mean) else None
    return Settled(result.claim, decision.verdict, decision.look, seeds, decision.n, decision.reason, interval,
                   result.primary.log_scale, registry_hash(), estimate, result.primary.kind, result.primary.margin)


def settled_rows(ledger: Ledger) -> pd.DataFrame:
    """claims.csv's settled rows (stage SETTLED): each frozen verdict with its estimate and repeated interval, *the*
    verdict wherever it exists (a notebook's fixed-n row stays beside it, exploratory)."""
    return pd.DataFrame([settled_row(ledger, s) for s in ledger.settled.values()], columns=COLUMNS)


def settled_row(ledger: Ledger, s: Settled) -> dict[str, Any]:
    claim = CLAIMS[s.claim]
    shown = (lambda x: 100 * math.expm1(x)) if s.log_scale else (lambda x: x)  # a ratio in percent, as its tests
    low, high = (shown(v) for v in s.interval) if s.interval else (math.nan, math.nan)
    level = 1 - ledger.design.alpha * (1 if s.test in ("", DIFFERENCE) else 2)
    seeds = f"{ledger.first_seed}-{ledger.first_seed + s.seeds - 1}"
    return {
        "claim": s.claim, "notebook": claim.notebook, "statement": claim.statement, "preset": ledger.preset,
        "dataset": ledger.params.get("dataset") or DEFAULT_DATASET, "test": s.test or DIFFERENCE, "unit": claim.unit,
        "n_seeds": s.n, "n_missing": s.seeds - s.n, "method": f"group-sequential, repeated {level:.0%} interval",
        "effect": math.nan if s.estimate is None else round(shown(s.estimate), 3), "ci_low": round(low, 3),
        "ci_high": round(high, 3), "ci_level": level, "sd": math.nan, "margin": s.margin, "p_value": math.nan,
        "mde_80": math.nan, "sesoi": math.nan, "power_at_sesoi": math.nan, "seeds_for_sesoi": math.nan,
        "verdict": s.verdict, "vs_paper": relation(claim, s.verdict),
        "definition": f"settled sequentially: frozen at look {s.look} of {len(ledger.design.looks)} (seeds {seeds}; "
                      f"ledger settled-{ledger.preset}.json)",
        "post_hoc": "", "premise": f"{'not met' if s.verdict == PREMISE_NOT_MET else 'met'}: checked at every look",
        "other_tests": s.reason, "condition": "", "registry": s.registry,
        "verdict_words": verdict_words(s.verdict, s.test or DIFFERENCE, s.margin or math.nan, claim.unit, math.nan,
                                       "settled sequentially"),
        "stage": SETTLED,
    }


def decide_look(ledger: Ledger, look: int, results: Sequence[ClaimResult], final: bool,
                smallest_effect: Mapping[str, float | None] | None = None) -> Ledger:
    """The ledger after `look`: each open claim among `results` decided, the ones that stop frozen; frozen and
    unsettleable claims are never decided again. `smallest_effect`: claim -> the preset's value (none: None)."""
    settled, unsettled, arms = dict(ledger.settled), dict(ledger.unsettled), dict(ledger.arms)
    protocols = dict(ledger.protocols)
    for result in results:
        if not ledger.is_open(result.claim):
            continue
        arms[result.claim] = result.premise.arms
        protocols[result.claim] = result.premise.protocol
        why = why_not_sequential(result, ledger.preset)
        if why is not None:
            unsettled[result.claim] = why
            continue
        decision = decide_claim(ledger.design, result, look, final, (smallest_effect or {}).get(result.claim))
        if decision.stop:
            settled[result.claim] = frozen(decision, result, ledger.design.looks[look - 1])
    return dataclasses.replace(ledger, looks_done=look, settled=settled, unsettled=unsettled, arms=arms,
                               protocols=protocols)


RunLook = Callable[[Sequence[Notebook], tuple[int, ...]], list[str]]  # -> failure messages
Evaluate = Callable[[Notebook, tuple[int, ...]], "list[ClaimResult] | None"]  # None: runs missing from the store


def run_settle(out_dir: str | Path, fresh: Ledger, notebooks: Sequence[Notebook], run_look: RunLook,
               evaluate: Evaluate, clock: Callable[[], float] = time.monotonic,
               refresh: Callable[[Path, str], None] | None = None) -> tuple[Ledger, list[str]]:
    """Look after look until every claim is settled or a budget ends; returns the ledger and the failures.
    `refresh(out_dir, preset)` brings report.md up to the ledger after each look (the batch wrote it before the
    look's decision)."""
    ledger, failures, started = resume(out_dir, fresh), [], clock()
    while ledger.looks_done < ledger.design.reachable and (todo := open_notebooks(ledger, notebooks)):
        look = ledger.looks_done + 1
        seeds = ledger.seeds(look)
        print(f"settle: look {look} of {len(ledger.design.looks)} ({len(seeds)} seeds, {seeds[0]}-{seeds[-1]}): "
              f"notebook(s) {', '.join(nb.id for nb in todo)}", flush=True)
        failures += run_look(todo, seeds)
        results, smallest = [], {}
        for nb in todo:
            found = evaluate(nb, seeds)
            if found is None:
                raise SettleError(f"look {look}: notebook {nb.stem}'s runs at seeds {seeds[0]}-{seeds[-1]} are not all "
                                  "in the store; run the same command again to continue this look")
            results += found
            smallest.update({r.claim: nb.smallest_effect for r in found})
        elapsed = ledger.elapsed_s + clock() - started
        budget = ledger.design.time_budget_s
        final = look == ledger.design.reachable or (budget is not None and elapsed >= budget)
        ledger = dataclasses.replace(decide_look(ledger, look, results, final, smallest), elapsed_s=elapsed)
        ledger = without_absent(ledger, todo, results)
        started = clock()
        with locked(claims_lock(out_dir)):
            write_ledger(out_dir, ledger)
        if ledger.settled:
            replace_rows(out_dir, ledger.preset, settled_rows(ledger))  # *the* verdicts, beside the fixed-n rows
        if refresh is not None:
            refresh(Path(out_dir), ledger.preset)
        print_look(ledger, look)
    return ledger, failures


def without_absent(ledger: Ledger, notebooks: Sequence[Notebook], results: Sequence[ClaimResult]) -> Ledger:
    """The ledger with each open claim of `notebooks` that their settings did not compute (its conditions are not
    in the command's parameters) left unsettled, so that it keeps no look going."""
    computed = {r.claim for r in results}
    absent = {c: ABSENT for nb in notebooks for c in claims_of(nb.stem) if c not in computed and ledger.is_open(c)}
    return dataclasses.replace(ledger, unsettled={**ledger.unsettled, **absent}) if absent else ledger


def print_look(ledger: Ledger, look: int) -> None:
    stopped = [s for s in ledger.settled.values() if s.look == look]
    for s in stopped:
        print(f"settle: {s.claim} {s.verdict} at look {look} ({s.seeds} seeds): {s.reason}", flush=True)


def section(out_dir: str | Path, preset: str) -> list[str]:
    """report.md's section on the sequential design and its settled verdicts (none without a ledger), between
    markers so that views/report.refresh_report can replace it after each look."""
    ledger = read_ledger(out_dir, preset)
    if ledger is None:
        return []
    lines = ["", START, "## Settled sequentially", "",
             f"`run --settle` ledger `{ledger_path(out_dir, preset).name}`: notebooks {', '.join(ledger.notebooks)}, "
             f"seeds from {ledger.first_seed}; {ledger.looks_done} of {len(ledger.design.looks)} looks done in "
             f"{ledger.elapsed_s / 60:.1f} min. A verdict here is frozen at the look where its claim stopped, and is "
             "the error-controlled one: the table at the top shows it; a notebook's fixed-n test of the same claim "
             "is listed in the detail only, as exploratory.", "",
             ledger.design.describe(), "", premise_planning(ledger), "",
             "| claim | verdict | vs its source | look | seeds | pairs | repeated interval | premise pass (arms) "
             "| why |",
             "|---|---|---|---|---|---|---|---|---|"]
    for claim in sorted({c for nb in ledger.notebooks for c in claims_of_id(nb)} | set(ledger.settled),
                        key=list(CLAIMS).index):
        s = ledger.settled.get(claim)
        if s is None:
            why = ledger.unsettled.get(claim)
            verdict, reason = ("not settled sequentially", why) if why else (OPEN, "no boundary crossed yet")
            lines.append(f"| {claim} | {verdict} | – | – | – | – | – | {planned_pass(ledger, claim)} | {reason} |")
            continue
        interval = "–" if s.interval is None else f"{s.interval[0]:+.3g} to {s.interval[1]:+.3g}" + \
            (" (log ratio)" if s.log_scale else f" {CLAIMS[claim].unit}")
        shown = SMALLER if s.verdict == FUTILE else s.verdict  # a settled answer, in words
        lines.append(f"| {claim} | {shown} | {relation(CLAIMS[claim], s.verdict)} | {s.look} | {s.seeds} | {s.n} "
                     f"| {interval} | {planned_pass(ledger, claim)} | {s.reason} |")
    return lines + ["", END]


def last_seeds(design: Design) -> int:
    return design.looks[design.reachable - 1]


def premise_planning(ledger: Ledger) -> str:
    return (f"**Premise planning.** 'Premise pass' is the chance that a claim's arms, if each truly fits "
            f"{PLANNING_MARGIN_SD:g} per-seed SD above the floor, all pass the premise at the last reachable look "
            f"({last_seeds(ledger.design)} seeds; premises.pass_chance, noncentral t; a scratch arm shared by "
            f"conditions is counted once per condition, so it is a lower bound). Wanted: >= {WANTED_PASS:.0%}; a "
            "claim under it is marked with the seeds that would reach it. A premise still uncertain at the last "
            "look is 'premise uncertain' (not resolved). A claim whose runs trained to a target (premises.RunFitRule) "
            "has no floor to pass: its column gives the chance that more than a third of its seeds are flagged at "
            f"the last look, at the fit pilot's {FLAG_CHANCE:.0%} a seed (sequential.void_chance).")


def planned_pass(ledger: Ledger, claim: str) -> str:
    """The claim's premise pass chance at the last reachable look, its arm count, and where it would reach
    WANTED_PASS when it falls short ('–' before its first look or for a premise on something else)."""
    arms = ledger.arms.get(claim, 0)
    if ledger.protocols.get(claim) == TARGET_PROTOCOL:  # per-run flags: the chance of a void, not of a pass
        seeds = last_seeds(ledger.design)
        return f"void {void_chance(seeds):.2f} at {seeds} seeds (flags {FLAG_CHANCE:.0%} a seed)"
    if not arms:
        return "–"
    chance = pass_chance(last_seeds(ledger.design), arms)
    if chance >= WANTED_PASS:
        return f"{chance:.2f} ({arms})"
    return f"**{chance:.2f}** ({arms}; {WANTED_PASS:.0%} needs {seeds_to_pass(arms)} seeds)"


def claims_of_id(notebook_id: str) -> tuple[str, ...]:
    return tuple(c.id for c in CLAIMS.values() if c.notebook[:2] == notebook_id)


TRIAGE_HOURS = 8.0  # a claim whose seeds take longer here is not settleable at this scale (a night on 2 cores)
USEFUL_STOP = 0.05  # a look is useful when a planned claim's chance to stop there with a verdict reaches this
CENTRAL = ("C1", "C2", "C4")  # the paper's central claims: the main job settles them
# The claims registered as one paired difference of gaps in pp, the ones a plan states power for: the central
# ones and FIRE's (registered 2026-12-06 to be settled on seeds 650-699).
PLANNED = (*CENTRAL, "C18a", "C18b", "C18c", "C18d")
TRIAGE_COLUMNS = ("claim", "notebook", "sesoi", "sd", "seeds", "hours", "outcome", "command")
MAIN_JOB = "settled by the main job"
OPT_IN = "opt-in settle target"
TOO_COSTLY = f"cannot be settled at this scale (over {TRIAGE_HOURS:g} h here): the gpu preset, or a registered estimate"
NO_SD = "no stated SD in its unit: seeds not planned; reported as a registered estimate"
ABSENT = "not computed under this command's parameters (its conditions were not run)"


@dataclasses.dataclass(frozen=True)
class Plan:
    """What `run --settle` would do, before any training: each look's chance to stop each difference claim at
    its smallest effect of interest, and the time to reach each look, expected and at worst."""

    design: Design
    # a notebook id ("02": its own runs) or the ids sharing runs ("01+02+04": a scratch arm trained once for all
    # three) -> wall seconds one more seed of those runs costs here
    seconds_per_seed: Mapping[str, float]
    operating: Mapping[str, Operating]  # claim -> its difference_power at its sesoi (difference claims only)
    claims: Mapping[str, tuple[str, ...]]  # the same keys -> the claims that read those runs
    sesoi: Mapping[str, float | None] = dataclasses.field(default_factory=dict)  # claim -> the preset's, in pp
    sd: float | None = None  # the stated planning SD (pp) the seeds are planned at

    def reach_seconds(self, look: int) -> float:
        """Wall seconds to train every notebook up to `look`'s seeds (every claim still open)."""
        return sum(s * self.design.looks[look - 1] for s in self.seconds_per_seed.values())

    def open_chance(self, runs: str, look: int) -> float:
        """The chance some claim that reads these runs is still open at `look`: its most durable claim's (a lower
        bound where several read them); 1 where a claim has no operating characteristics (not a difference)."""
        chances = [1.0 - sum(self.operating[c].stops[:look - 1]) if c in self.operating else 1.0
                   for c in self.claims[runs]]
        return max(chances, default=0.0)

    def expected_seconds(self) -> float:
        looks = self.design.looks[:self.design.reachable]
        steps = [n - m for n, m in zip(looks, (0, *looks))]
        return sum(self.open_chance(nb, k) * step * s for nb, s in self.seconds_per_seed.items()
                   for k, step in enumerate(steps, start=1))

    def first_useful_look(self) -> int | None:
        """The first look at which some difference claim stops with a verdict with chance >= USEFUL_STOP."""
        for k in range(1, self.design.reachable + 1):
            if any(sum(v for verdict, v in o.by_look[k - 1].items() if verdict not in (OPEN, PREMISE_NOT_MET))
                   >= USEFUL_STOP for o in self.operating.values()):
                return k
        return None

    def check_budget(self) -> None:
        """Refuse, before any training, a time budget that cannot reach a useful look."""
        budget, useful = self.design.time_budget_s, self.first_useful_look()
        if budget is None or useful is None:
            return
        needed = self.reach_seconds(useful)
        if budget < needed:
            raise SettleError(f"--time-budget {budget / 3600:g} h cannot reach a useful look: look {useful} "
                              f"({self.design.looks[useful - 1]} seeds) takes about {needed / 3600:.2f} h here. "
                              f"It is the first look where a claim can stop with chance >= {USEFUL_STOP:.0%} at its "
                              "smallest effect of interest. Give at least that, or fewer notebooks (--only).")

    def lines(self) -> list[str]:
        d = self.design
        looks = ", ".join(map(str, d.looks[:d.reachable]))
        out = [f"plan: looks at {looks} seeds, {spending_name(d.spending)} spending, "
               f"alpha {d.alpha:g}, futility {d.futility:g}"]
        for claim, o in self.operating.items():
            stops = ", ".join(f"{s:.2f}" for s in o.stops)
            out.append(f"plan: {claim} at its smallest effect of interest ({o.effect:g} pp, SD {o.sd:g}, premise "
                       f"flags {o.flag_chance:.0%} a seed): power {o.power:.2f}; chance to stop at each look {stops}")
        for runs, s in self.seconds_per_seed.items():
            whose = f"notebook {runs}'s own runs" if "+" not in runs else f"runs notebooks {runs} share"
            out.append(f"plan: {whose} ({', '.join(self.claims[runs])}): ~{s / 60:.1f} min a seed")
        worst = self.reach_seconds(d.reachable)
        out.append(f"plan: expected ~{self.expected_seconds() / 3600:.2f} h, at worst {worst / 3600:.2f} h "
                   f"(every look); first useful look {self.first_useful_look() or 'none'}")
        return out

    def triage(self) -> pd.DataFrame:
        """Every claim of these notebooks (TRIAGE_COLUMNS): the seeds a fixed-n test needs for 80 % power at its
        smallest effect of interest (a pp claim at the stated SD; others have no stated SD) and the hours that
        costs here. The central claims are the main job's; others under TRIAGE_HOURS are opt-in settle targets
        (one command each); past it, they cannot be settled at this scale."""
        rows = []
        for claim in sorted({c for claims in self.claims.values() for c in claims}, key=list(CLAIMS).index):
            sesoi, notebook = self.sesoi.get(claim), CLAIMS[claim].notebook[:2]
            row = {"claim": claim, "notebook": notebook, "sesoi": sesoi, "sd": self.sd, "seeds": math.nan,
                   "hours": math.nan, "command": ""}
            if CLAIMS[claim].unit != "pp" or not sesoi or not self.sd:
                rows.append({**row, "sd": math.nan, "outcome": f"{NO_SD} ({CLAIMS[claim].unit})"})
                continue
            seeds = seeds_for(lambda n, s=sesoi: power_difference(s, self.sd, n))
            hours = seeds * self.claim_seconds(claim) / 3600
            row.update(seeds=seeds, hours=round(hours, 2))
            if claim in CENTRAL:
                rows.append({**row, "outcome": MAIN_JOB, "command": "python -m plasticity_nb run --stage settle"})
            elif hours <= TRIAGE_HOURS:
                looks = f"{math.ceil(seeds / 2)},{int(seeds)}"
                command = f"python -m plasticity_nb run --settle {looks} --first-seed SEED --only {notebook}"
                rows.append({**row, "outcome": OPT_IN, "command": command})
            else:
                rows.append({**row, "outcome": TOO_COSTLY})
        return pd.DataFrame(rows, columns=TRIAGE_COLUMNS)

    def claim_seconds(self, claim: str) -> float:
        """Wall seconds a seed of every run the claim reads costs here (its own and the shared ones)."""
        return sum(s for runs, s in self.seconds_per_seed.items() if claim in self.claims[runs])


def triage_lines(table: pd.DataFrame) -> list[str]:
    """A plan's `triage()` rows as the command prints them."""
    return [f"triage: {r.claim}: " + (f"about {r.seeds:.0f} seeds at {r.sesoi:g} pp (SD {r.sd:g}), ~{r.hours:.1f} h "
                                      "here: " if math.isfinite(r.seeds) else "") +
            r.outcome + (f": {r.command}" if r.command else "") for r in table.itertuples()]


def triage_path(out_dir: str | Path, preset: str) -> Path:
    return Path(out_dir) / f"triage-{preset}.csv"


def write_triage(out_dir: str | Path, preset: str, table: pd.DataFrame, machine: str) -> None:
    """The triage of every claim, with the machine its hours were measured on, for report.md."""
    path = triage_path(out_dir, preset)
    remove_stale_temporaries(path)
    write_atomic(path, table.assign(machine=machine).to_csv(index=False))


def triage_section(out_dir: str | Path, preset: str) -> list[str]:
    """report.md's triage: which claims this machine can settle at this preset, and at what cost (none without
    a plan: `run --plan` or the main job writes it)."""
    path = triage_path(out_dir, preset)
    if not path.exists():
        return []
    table = pd.read_csv(path, keep_default_na=False, na_values=["", "nan"], dtype={"notebook": str})
    table = table.assign(command=table.command.fillna(""))
    machine = table.machine.iloc[0] if len(table) else ""
    shown = table.assign(
        seeds=[f"{s:.0f}" if math.isfinite(s) else "–" for s in table.seeds],
        hours=[f"{h:.1f}" if math.isfinite(h) else "–" for h in table.hours],
        command=[f"`{c}`" if c else "" for c in table.command])
    lines = ["", "## Which claims can be settled here", "",
             f"From the plan on {machine}: the seeds a fixed-n test needs for 80 % power at each claim's smallest "
             f"effect of interest, at the stated SD, and the hours they take here. A claim under {TRIAGE_HOURS:g} h "
             "is an opt-in settle target, one command; past it, it stays a registered estimate at this scale. "
             "SEED is the first of a block of seeds no result has used.", "",
             "| claim | notebook | seeds | hours | outcome | command |", "|---|---|---|---|---|---|"]
    lines += [f"| {r.claim} | {r.notebook} | {r.seeds} | {r.hours} | {r.outcome} | {r.command} |"
              for r in shown.itertuples()]
    return lines


def make_plan(design: Design, seconds_per_seed: Mapping[str, float], claims: Mapping[str, tuple[str, ...]],
              sesoi: Mapping[str, float | None], sd: float | None) -> Plan:
    """The plan of `design` for these notebooks: each difference claim's operating characteristics at its smallest
    effect of interest and the stated planning SD (none where either is missing)."""
    operating = {c: difference_power(design, s, sd, s, flag_chance=FLAG_CHANCE)
                 for nb in claims for c in claims[nb] if c in PLANNED and (s := sesoi.get(c)) and sd}
    return Plan(design, dict(seconds_per_seed), operating, dict(claims), dict(sesoi), sd)
