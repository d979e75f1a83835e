"""Adding seeds with error control: a group-sequential design that settles each claim at planned looks.

Looking at a result and adding seeds until it is significant inflates the error rate (3, 5, 8 seeds, stopping at
p < 0.05: about 12 % instead of 5 %). A `Design` fixes, before any run, the looks (seed counts, e.g. 4, 8, 12,
16), the level, how the level is spent over the looks, a non-binding futility rule, what a failing premise does
and what a budget stop reports. At each look a claim still open either stops, its verdict then frozen (later
seeds never change it), or gets the seeds of the next look.

Boundaries. Lan & DeMets (1983) alpha spending, O'Brien-Fleming type by default, f(t; a) = 2 - 2 Phi(z_{1-a/2} /
sqrt(t)) for one side at level a (Pocock type a log(1 + (e - 1) t), or Hwang, Shih & DeCani's (1990) family
a (1 - e^(-gamma t)) / (1 - e^(-gamma)), `hsd(gamma)`, as the alternatives), at information fractions
t = n_k / n_K. The z boundaries come from the standard recursive numerical integration of the sequence of z
statistics (Armitage, McPherson & Rowe 1969; Jennison & Turnbull 2000, ch. 19) on a Simpson grid, each solved so
that the chance of first crossing at look k is f(t_k) - f(t_{k-1}). They are checked against published values
(tests/test_sequential.py): with the same integrator the classic O'Brien-Fleming constant C_B(4, 0.05) = 2.024
(Jennison & Turnbull 2000, Table 2.3) and Pocock's C_P(4, 0.05) = 2.361 (Table 2.1); Lan-DeMets O'Brien-Fleming
spending with 4 equal looks, two-sided 0.05 gives 4.33, 2.96, 2.36, 2.01 (gsDesign's sfLDOF, test.type = 2);
gsDesign's own test snapshot of its default design (Hwang-Shih-DeCani spending, gamma = -4, 5 equal looks,
one-sided 0.025: 3.2527, 2.9860, 2.6917, 2.3737, 2.0253) to 4 decimals; and where PyPI's `gsdesign` is installed,
its port of gsDesign's integration grid (gridpts, h1, hupdate) finds that each spending's boundaries, at the main
design's unequal looks too, spend what the function says to 1e-6.

The t statistics. A claim's statistic at a look is each condition's own paired t on n - 1 df (as stats.py's
tests), and at 4 seeds (3 df) a z boundary would be far too lenient.
The z boundaries become nominal one-sided p values (the significance level
approach: p_k = 1 - Phi(z_k)) and each look's t boundary is the t quantile of 1 - p_k at the look's df. At these
small n that alone is not enough: looks at 4, 8, 12, 16 seeds give 0.0527 for a two-sided 0.05 (400,000
simulations, SE 0.0003), since the t statistics of one claim share its seeds' SD estimates. So the nominal p
values are calibrated by simulation (`calibration`): one factor on every look's p (the spending shape kept), the
one that makes the t design's error exactly the level on 10^6 seeded null paths of normal differences (for
which the t statistics' joint law depends on nothing but the looks); 0.947 two-sided, 0.951 one-sided at these
looks. The whole decision path is then checked by independent simulation (benchmarks/sequential_error.py,
benchmarks/RESULTS.md). `Design(calibrated=False)` is the significance-level approach alone.

Each test kind (the statement's test of stats.py, with the same levels):

- difference: two-sided at alpha (each side alpha / 2); 'supported' when the t statistic crosses the upper
  boundary, 'not supported' the lower; non-binding futility (when a smallest effect of interest is given) when
  the one-sided test of mean >= sesoi rejects at its own spending (level `futility`, interim looks only). Its
  verdict (FUTILE) reads 'smaller than the smallest effect of interest' and is a settled answer, not an open one:
  an effect as large as the sesoi is rejected (a true effect at the sesoi stops there with a chance under the
  futility level; `difference_power` gives it per design), while a smaller effect, zero included, is neither
  claimed nor excluded. A claim of several conditions stops so when any condition is smaller.
- equivalence: paired TOST, each one-sided test against its margin with its own one-sided spending at alpha;
  'equivalent' when both cross at the same look; 'not equivalent' when a one-sided test that the mean lies
  beyond a margin crosses (the same one-sided spending).
- bound: one-sided at alpha; 'supported' when the mean lies below the bound by the boundary, 'not supported'
  when it lies above it by the boundary.

A claim of several conditions holds only if every condition crosses (intersection-union: no correction), and
fails if any contrary test crosses after Holm: since the claim stops at its first failure, only Holm's first step
matters, i.e. each contrary test at alpha / G (G conditions), with its own spending table at that level. The
futility level is likewise split over the conditions. Reported intervals are repeated confidence intervals
(Jennison & Turnbull ch. 9): mean +/- the look's t boundary x SE, valid at whatever look the claim stops,
budget stops included; a verdict is exactly "its repeated interval excludes 0 / lies within the margin / below
the bound".

Rules that only remove chances to stop keep the level: the premise gate, ties, futility (non-binding) and budget
stops all do, so each is a decision, not a recalibration. Premise: evaluated at every look on all seeds so far;
'not met' stops the claim with 'premise not met' (frozen); 'uncertain' makes no decision at that look and the
claim continues ('premise uncertain' at its last look). Ties (fewer than stats.MIN_DISTINCT distinct differences
in a condition, where stats.py falls back to the exact sign-flip test): no stop at that look, 'not resolved' at
the last one, since the boundaries are for t statistics. Budgets: a look the seed budget cannot reach is never
run; when a budget (seeds or time) ends the claim before the design's last look, it is 'stopped by budget: not
resolved' with its repeated interval, never a verdict the boundaries did not give. Missing differences (a diverged
run) are left out and the look's nominal p is kept, its t boundary at the df of the pairs present.

Planning. `difference_power` simulates a difference claim through a design's own `codes` (seeded, with
train-to-target's per-seed premise flags voiding a claim past a third of its seeds), for its power at the smallest
effect of interest and its chance of each verdict at each look. `MAIN_DESIGN` (looks 15, 27, 36; Hwang-Shih-DeCani
gamma 0; futility 0.05) is the main job's design for the central claims, chosen with it by
benchmarks/design_choice.py (docs/sequential-design.md).

Why hand-written: PyPI's `gsdesign` (0.1.5) holds only the integration grid, no spending or boundary search;
`confseq`, `expectation` and `savvi` give anytime-valid confidence sequences, which are valid at any look but
wider than a group-sequential boundary at a handful of planned looks, and none gives t boundaries at 3-15 df.
The formulas here are the textbook ones, checked against the published tables above.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import scipy
from scipy.special import ndtr, ndtri, stdtr, stdtrit

from ..core.files import cached
from .premises import MAX_FLAGGED_SHARE
from .stats import (
    ALPHA,
    EQUIVALENT,
    MIN_DISTINCT,
    NOT_EQUIVALENT,
    NOT_SUPPORTED,
    PREMISE_NOT_MET,
    PREMISE_UNCERTAIN,
    SUPPORTED,
    finite,
    t_model_fits,
)

DIFFERENCE, EQUIVALENCE, BOUND = "difference", "equivalence", "bound"
KINDS = (DIFFERENCE, EQUIVALENCE, BOUND)
OBRIEN_FLEMING, POCOCK = "obrien-fleming", "pocock"  # Lan-DeMets spending types
HWANG_SHIH_DECANI = "hwang-shih-decani"  # a family: written with its gamma, hsd(-4) = "hwang-shih-decani(-4)"
HSD_GAMMA = (-40.0, 40.0)  # gsDesign's sfHSD range
OPEN = "open"  # not stopped: the claim gets the next look's seeds
# a futility stop: the code ledgers and claims.csv store; readers get its words, "smaller than the smallest effect
# of interest", a settled answer (module docstring; claims.SMALLER, verdict_words and relation)
FUTILE = "stopped for futility"
BUDGET = "stopped by budget: not resolved"
NOT_RESOLVED = "not resolved"  # as claims.NOT_RESOLVED: the last look reached without a verdict
VERDICTS = (OPEN, SUPPORTED, NOT_SUPPORTED, EQUIVALENT, NOT_EQUIVALENT, FUTILE, NOT_RESOLVED, BUDGET,
            PREMISE_NOT_MET, PREMISE_UNCERTAIN)
CODE = {verdict: code for code, verdict in enumerate(VERDICTS)}  # the array form `codes` returns
MET, UNCERTAIN, NOT_MET = "met", "uncertain", "not met"  # premises.Premise.state
MIN_FIRST_LOOK = 3  # fewer seeds give a t on 1 df, and no spread for the premise's bound
GRID = 2001  # Simpson points per look: boundaries to ~1e-6, far below what the tables print
LOW = -12.0  # one-sided: the continuation region's lower end (the null density below it is < 1e-31)


def hsd(gamma: float) -> str:
    """The Hwang-Shih-DeCani spending function with this gamma, as a `Design.spending` value."""
    return f"{HWANG_SHIH_DECANI}({float(gamma):g})"


def hsd_gamma(spending: str) -> float | None:
    """The gamma of a Hwang-Shih-DeCani spending value (None: another function); ValueError when malformed."""
    if not spending.startswith(HWANG_SHIH_DECANI):
        return None
    found = re.fullmatch(re.escape(HWANG_SHIH_DECANI) + r"\(([-+]?\d+(?:\.\d+)?)\)", spending)
    if found is None:
        raise ValueError(f"give Hwang-Shih-DeCani spending its gamma, e.g. {hsd(-4)!r}; got {spending!r}")
    gamma = float(found.group(1))
    if not HSD_GAMMA[0] <= gamma <= HSD_GAMMA[1]:
        raise ValueError(f"Hwang-Shih-DeCani gamma must lie in [{HSD_GAMMA[0]:g}, {HSD_GAMMA[1]:g}], got {gamma:g}")
    return gamma


def check_spending(spending: str) -> None:
    if spending not in (OBRIEN_FLEMING, POCOCK) and hsd_gamma(spending) is None:
        raise ValueError(f"unknown spending {spending!r}; known: {OBRIEN_FLEMING}, {POCOCK}, {hsd(-4)} (any gamma "
                         f"in [{HSD_GAMMA[0]:g}, {HSD_GAMMA[1]:g}])")


def spent(fraction: float | np.ndarray, level: float, spending: str = OBRIEN_FLEMING) -> np.ndarray:
    """Lan-DeMets spending: the one-sided error spent by information fraction t, at total one-sided `level`.
    Hwang-Shih-DeCani: level (1 - exp(-gamma t)) / (1 - exp(-gamma)), level t at gamma 0 (gamma -4 is near
    O'Brien-Fleming's shape, 1 near Pocock's)."""
    t = np.asarray(fraction, dtype=float)
    check_spending(spending)
    if spending == OBRIEN_FLEMING:
        return 2 * ndtr(-ndtri(1 - level / 2) / np.sqrt(t))
    if spending == POCOCK:
        return level * np.log1p((math.e - 1) * t)
    gamma = hsd_gamma(spending)
    return level * t if gamma == 0 else level * -np.expm1(-gamma * t) / -math.expm1(-gamma)


def simpson(low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    """GRID points on [low, high] and their composite Simpson weights."""
    z = np.linspace(low, high, GRID)
    w = np.full(GRID, 2.0)
    w[1::2], w[0], w[-1] = 4.0, 1.0, 1.0
    return z, w * (high - low) / (3 * (GRID - 1))


def beyond(z: np.ndarray, mass: np.ndarray, before: float, now: float, bound: float, two_sided: bool) -> float:
    """Chance of crossing `bound` at the look with information `now`, from the paths still open at the look
    `before` (grid `z`, weight times density `mass`): Z_now = (Z_before sqrt(before) + N(0, now - before)) /
    sqrt(now)."""
    scale = math.sqrt(now - before)
    shift = z * math.sqrt(before)
    p = mass @ ndtr((shift - bound * math.sqrt(now)) / scale)
    if two_sided:
        p += mass @ ndtr((-bound * math.sqrt(now) - shift) / scale)
    return float(p)


def advance(z: np.ndarray, mass: np.ndarray, before: float, now: float, low: float, high: float):
    """The open paths' grid and mass at the look `now`, continuing on (low, high)."""
    y, w = simpson(low, high)
    scale = math.sqrt(now - before)
    u = (y[:, None] * math.sqrt(now) - z[None, :] * math.sqrt(before)) / scale
    density = np.exp(-u ** 2 / 2) / math.sqrt(2 * math.pi) * (math.sqrt(now) / scale)
    return y, w * (density @ mass)


def walk(fractions: Sequence[float], two_sided: bool, choose: Callable[[int, Callable[[float], float]], float]):
    """Boundaries and first-crossing chances under the null, look by look: `choose(k, chance)` picks look k's
    boundary given `chance(b)`, the chance of first crossing b at look k."""
    bounds, chances, z, mass = [], [], None, None
    for k, now in enumerate(fractions):
        if k == 0:
            chance = lambda b: float((2 if two_sided else 1) * ndtr(-b))
        else:
            chance = functools.partial(beyond, z, mass, fractions[k - 1], now, two_sided=two_sided)
        b = choose(k, chance)
        bounds.append(b)
        chances.append(chance(b))
        high = min(b, -LOW)  # beyond 12 the density is nil
        low = -high if two_sided else LOW
        if k == 0:
            z, w = simpson(low, high)
            mass = w * np.exp(-z ** 2 / 2) / math.sqrt(2 * math.pi)
        else:
            z, mass = advance(z, mass, fractions[k - 1], now, low, high)
    return tuple(bounds), tuple(chances)


def crossing(fractions: Sequence[float], bounds: Sequence[float], two_sided: bool) -> tuple[float, ...]:
    """Chance of first crossing each of fixed `bounds` (z scale) under the null."""
    return walk(fractions, two_sided, lambda k, chance: bounds[k])[1]


@functools.lru_cache(maxsize=256)
def z_boundaries(fractions: tuple[float, ...], level: float, spending: str, two_sided: bool) -> tuple[float, ...]:
    """Lan-DeMets z boundaries: one-sided at `level`, or two-sided symmetric at total `level` (level / 2 a side)."""
    from scipy.optimize import brentq

    side = level / 2 if two_sided else level
    total = spent(np.asarray(fractions), side, spending) * (2 if two_sided else 1)
    increments = np.diff(total, prepend=0.0)

    def choose(k: int, chance: Callable[[float], float]) -> float:
        return brentq(lambda b: chance(b) - increments[k], 0.0, -LOW + 8, xtol=1e-10)

    return walk(fractions, two_sided, choose)[0]


CALIBRATION_SIMS, CALIBRATION_CHUNK = 1_000_000, 250_000  # null paths: the calibrated level's MC SE ~0.0002
CALIBRATION_SEED = 20261130  # fixed: a design's boundaries are the same on every machine and run


@functools.lru_cache(maxsize=8)
def null_t(looks: tuple[int, ...]) -> np.ndarray:
    """(CALIBRATION_SIMS, looks) paired t statistics of normal differences with mean 0, built from each block of
    seeds' sum and within-block sum of squares (the t statistic does not depend on the SD)."""
    rng = np.random.default_rng(CALIBRATION_SEED)
    n = np.asarray(looks, dtype=float)
    sizes = np.diff(n, prepend=0.0)
    out = np.empty((CALIBRATION_SIMS, len(looks)))
    for start in range(0, CALIBRATION_SIMS, CALIBRATION_CHUNK):
        m = min(CALIBRATION_CHUNK, CALIBRATION_SIMS - start)
        sums = rng.standard_normal((m, len(looks))) * np.sqrt(sizes)
        within = np.where(sizes > 1, rng.chisquare(np.maximum(sizes - 1, 1), (m, len(looks))), 0.0)
        total = np.cumsum(sums, axis=1)
        squares = np.cumsum(within + sums ** 2 / sizes, axis=1) - total ** 2 / n
        out[start:start + m] = (total / n) / np.sqrt(squares / (n - 1) / n)
    return out


@functools.lru_cache(maxsize=256)
def calibration(looks: tuple[int, ...], level: float, spending: str, two_sided: bool) -> float:
    """The factor on every look's nominal p (z boundary's tail) that makes the t design's error exactly `level`
    on CALIBRATION_SIMS null paths: the significance-level approach alone errs by ~5 % of the level at 3-15 df
    (0.0527 for 0.05 at looks 4, 8, 12, 16; benchmarks/RESULTS.md). Kept in this machine's cache (about a second
    of simulation a design), keyed by everything it depends on: this module's source and numpy's and scipy's
    versions name the simulation and the boundaries."""
    key = json.dumps([list(looks), level, spending, two_sided, CALIBRATION_SIMS, CALIBRATION_SEED, np.__version__,
                      scipy.__version__, _SOURCE_DIGEST])
    return cached("calibration", key, lambda: _calibrate(looks, level, spending, two_sided))


_SOURCE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def _calibrate(looks: tuple[int, ...], level: float, spending: str, two_sided: bool) -> float:
    fractions = tuple(n / looks[-1] for n in looks)
    p = ndtr(-np.asarray(z_boundaries(fractions, level, spending, two_sided)))
    t, df = null_t(looks), np.asarray(looks) - 1
    t = np.abs(t) if two_sided else t

    def rate(scale: float) -> float:
        return float((t > stdtrit(df, 1 - np.minimum(scale * p, 0.49))).any(axis=1).mean())

    low, high = 0.25, 4.0  # rate(low) < level < rate(high) for any design with a few looks
    for _ in range(40):
        middle = math.sqrt(low * high)
        low, high = (middle, high) if rate(middle) <= level else (low, middle)
    return low


@dataclasses.dataclass(frozen=True)
class LookBoundary:
    look: int  # 1-based
    n: int  # planned seeds
    fraction: float  # n / the last look's n
    z: float  # the Lan-DeMets z boundary
    nominal_p: float  # the one-sided p a t statistic must reach at this look: calibration x (1 - Phi(z))
    t: float  # the t boundary at the planned df (n - 1)
    calibration: float = 1.0  # the factor on 1 - Phi(z) (1: the significance-level approach alone)


@dataclasses.dataclass(frozen=True)
class ConditionLook:
    """One condition's statistic at a look: its repeated confidence interval and how far it got."""

    label: str
    n: int
    mean: float
    sd: float
    ci_low: float  # repeated CI: 1 - alpha two-sided (difference), 1 - 2 alpha (equivalence, bound)
    ci_high: float
    statistic: float  # the claim's own t statistic (TOST: the weaker side), positive toward the claim
    boundary: float  # the t boundary it had to cross, at its df


@dataclasses.dataclass(frozen=True)
class Decision:
    stop: bool
    verdict: str  # one of VERDICTS; OPEN when not stopped
    reason: str
    look: int  # 1-based
    n: int  # the fewest finite pairs over the conditions
    nominal_p: float  # the look's nominal one-sided p boundary for the claim (efficacy)
    boundary: float  # the t boundary of the weakest condition
    conditions: tuple[ConditionLook, ...] = ()


def sides(kind: str) -> bool:
    """True when the kind's efficacy test is two-sided."""
    return kind == DIFFERENCE


@dataclasses.dataclass(frozen=True)
class Design:
    """A group-sequential design, fixed before any run (see the module docstring for every rule)."""

    looks: tuple[int, ...] = (4, 8, 12, 16)  # seeds per claim at each look, strictly increasing
    alpha: float = ALPHA  # difference: two-sided; equivalence (each one-sided test) and bound: one-sided
    spending: str = OBRIEN_FLEMING
    futility: float = 0.1  # one-sided level of the non-binding futility test at the sesoi (0: none)
    seed_budget: int | None = None  # the most seeds a claim may reach (None: the last look)
    time_budget_s: float | None = None  # the batch's: no look starts once it is spent
    calibrated: bool = True  # False: nominal p = 1 - Phi(z) alone (slightly over the level at these df)

    def __post_init__(self) -> None:
        looks = tuple(self.looks)
        if not looks or any(not float(n).is_integer() for n in looks):
            raise ValueError(f"looks must be whole seed counts, got {self.looks!r}")
        looks = tuple(int(n) for n in looks)
        if any(b <= a for a, b in zip(looks, looks[1:])):
            raise ValueError(f"looks must be strictly increasing seed counts, got {looks}")
        if looks[0] < MIN_FIRST_LOOK:
            raise ValueError(f"the first look needs at least {MIN_FIRST_LOOK} seeds, got {looks[0]}")
        if not 0 < self.alpha < 0.5:
            raise ValueError(f"alpha must lie in (0, 0.5), got {self.alpha!r}")
        check_spending(self.spending)
        if not 0 <= self.futility < 0.5:
            raise ValueError(f"futility level must lie in [0, 0.5), got {self.futility!r}")
        if self.seed_budget is not None and self.seed_budget < looks[0]:
            raise ValueError(f"seed budget {self.seed_budget} is below the first look ({looks[0]} seeds)")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise ValueError(f"time budget must be > 0 seconds, got {self.time_budget_s!r}")
        object.__setattr__(self, "looks", looks)

    @property
    def fractions(self) -> tuple[float, ...]:
        return tuple(n / self.looks[-1] for n in self.looks)

    @property
    def reachable(self) -> int:
        """How many looks the seed budget allows."""
        budget = self.looks[-1] if self.seed_budget is None else self.seed_budget
        return sum(n <= budget for n in self.looks)

    def next_look(self, seeds: int) -> int | None:
        """The planned seed count after `seeds`, or None when the design (or its seed budget) ends there."""
        later = [n for n in self.looks[:self.reachable] if n > seeds]
        return later[0] if later else None

    def table(self, two_sided: bool, level: float) -> tuple[LookBoundary, ...]:
        """Per look: the z boundary and the calibrated nominal p and t boundary (one side)."""
        z = z_boundaries(self.fractions, float(level), self.spending, two_sided)
        scale = calibration(self.looks, float(level), self.spending, two_sided) if self.calibrated else 1.0
        p = [scale * float(ndtr(-b)) for b in z]
        return tuple(LookBoundary(k + 1, n, f, b, q, float(stdtrit(n - 1, 1 - q)), scale)
                     for k, (n, f, b, q) in enumerate(zip(self.looks, self.fractions, z, p)))

    def boundaries(self, kind: str, conditions: int = 1) -> dict[str, tuple[LookBoundary, ...]]:
        """Per look: the efficacy table (alpha), the contrary one (alpha / conditions: Holm's first step) and,
        for a difference, the futility one (futility / conditions)."""
        check_kind(kind)
        tables = {"efficacy": self.table(sides(kind), self.alpha),
                  "contrary": self.table(sides(kind), self.alpha / conditions)}
        if kind == DIFFERENCE and self.futility > 0:
            tables["futility"] = self.table(False, self.futility / conditions)
        return tables

    def codes(self, kind: str, mean: np.ndarray, sd: np.ndarray, n: np.ndarray | int, look: int,
              margin: float | None = None, sesoi: float | None = None, final: bool = False) -> np.ndarray:
        """The verdict codes (CODE) of many claims at once, each a row of conditions: mean, sd and n of shape
        (claims, conditions), all on the t model with the premise met. The simulation and `decide` share it."""
        mean, sd = np.atleast_2d(mean), np.atleast_2d(sd)
        se, df = sd / np.sqrt(n), np.asarray(n) - 1
        tables = self.boundaries(kind, mean.shape[1])
        c_eff = stdtrit(df, 1 - tables["efficacy"][look - 1].nominal_p)
        c_con = stdtrit(df, 1 - tables["contrary"][look - 1].nominal_p)
        toward, against = statistics(kind, mean, se, margin)
        out = np.full(mean.shape[0], CODE[OPEN])
        if "futility" in tables and sesoi is not None and look < len(self.looks):
            below_sesoi = stdtr(df, (mean - sesoi) / se)  # one-sided p of mean >= sesoi against mean < sesoi
            out[(below_sesoi <= tables["futility"][look - 1].nominal_p).any(axis=1)] = CODE[FUTILE]
        out[(against > c_con).any(axis=1)] = CODE[NOT_EQUIVALENT if kind == EQUIVALENCE else NOT_SUPPORTED]
        out[(toward > c_eff).all(axis=1)] = CODE[EQUIVALENT if kind == EQUIVALENCE else SUPPORTED]
        if final:
            out[out == CODE[OPEN]] = CODE[BUDGET if look < len(self.looks) else NOT_RESOLVED]
        return out

    def decide(self, kind: str, differences: Sequence[float] | Mapping[str, Sequence[float]], look: int, *,
               margin: float | None = None, sesoi: float | None = None, premise: str = MET,
               final: bool | None = None) -> Decision:
        """The claim's decision at `look` (1-based) from all its paired differences so far (one sequence, or
        condition -> sequence for a claim that must hold in every condition), given its premise state on the
        same seeds. `final`: no later look will run (default: this is the last look the seed budget reaches;
        the batch passes True when its time budget ends)."""
        conditions = self.check(kind, differences, look, margin, premise)
        final = look == self.reachable if final is None else final
        if premise == NOT_MET:
            return self.stopped(PREMISE_NOT_MET, "the premise is not met at this look: frozen", look, conditions)
        if premise == UNCERTAIN:
            verdict = PREMISE_UNCERTAIN if final else OPEN
            return self.stopped(verdict, "the premise is uncertain at this look: no decision", look, conditions)
        summary = {label: summarize(d) for label, d in conditions.items()}
        if not all(fits for *_, fits in summary.values()):
            verdict = (BUDGET if look < len(self.looks) else NOT_RESOLVED) if final else OPEN
            why = f"fewer than {MIN_DISTINCT} distinct differences (ties) or {MIN_FIRST_LOOK} pairs: no t statistic"
            return self.stopped(verdict, why, look, conditions)
        mean, sd, n = (np.array([[s[i] for s in summary.values()]], dtype=float) for i in range(3))
        code = self.codes(kind, mean, sd, n, look, margin, sesoi, final)[0]
        return self.explain(kind, VERDICTS[code], look, summary, margin, sesoi)

    def check(self, kind: str, differences, look: int, margin: float | None, premise: str) -> dict:
        check_kind(kind)
        if not 1 <= look <= self.reachable:
            raise ValueError(f"look {look} is not one of the design's looks 1..{self.reachable} within its budget")
        if kind == DIFFERENCE and margin is not None:
            raise ValueError("a difference has no margin (give its smallest effect of interest as sesoi)")
        if kind != DIFFERENCE and not (margin is not None and margin > 0 if kind == EQUIVALENCE else
                                       margin is not None and math.isfinite(margin)):
            raise ValueError(f"a{'n' if kind == EQUIVALENCE else ''} {kind} test needs its margin (got {margin!r})")
        if premise not in (MET, UNCERTAIN, NOT_MET):
            raise ValueError(f"premise state must be one of met, uncertain, not met; got {premise!r}")
        conditions = dict(differences) if isinstance(differences, Mapping) else {"": differences}
        if not conditions:
            raise ValueError("no condition's differences given")
        return conditions

    def stopped(self, verdict: str, reason: str, look: int, conditions: Mapping) -> Decision:
        n = min(len(finite(d)[0]) for d in conditions.values())
        return Decision(verdict != OPEN, verdict, reason, look, n, math.nan, math.nan)

    def explain(self, kind: str, verdict: str, look: int, summary: Mapping, margin: float | None,
                sesoi: float | None) -> Decision:
        """The decision with each condition's repeated interval and statistic, and why it stopped or not."""
        nominal = self.boundaries(kind, len(summary))["efficacy"][look - 1].nominal_p
        rows = []
        for label, (mean, sd, n, _) in summary.items():
            se, c = sd / math.sqrt(n), float(stdtrit(n - 1, 1 - nominal))
            toward = statistics(kind, np.array([[mean]]), np.array([[se]]), margin)[0][0, 0]
            rows.append(ConditionLook(label, int(n), mean, sd, mean - c * se, mean + c * se, float(toward), c))
        weakest = min(rows, key=lambda r: r.statistic - r.boundary)
        reason = REASONS[verdict].format(look=look, n=weakest.n, sesoi=sesoi, margin=margin, level=self.alpha,
                                         bound=self.futility_bound(summary, look) if verdict == FUTILE else math.nan,
                                         futility=self.futility)
        return Decision(verdict != OPEN, verdict, reason, look, min(r.n for r in rows), nominal, weakest.boundary,
                        tuple(rows))

    def futility_bound(self, summary: Mapping, look: int) -> float:
        """The futility test's upper bound on the effect at `look`: mean + its t x SE, the lowest over the
        conditions (below the sesoi exactly when the test stops the claim). The repeated interval is the
        efficacy one (1 - alpha), wider: at a futility stop it can still reach above the sesoi."""
        table = self.boundaries(DIFFERENCE, len(summary))["futility"][look - 1]
        return min(mean + float(stdtrit(n - 1, 1 - table.nominal_p)) * sd / math.sqrt(n)
                   for mean, sd, n, _ in summary.values())

    def settle(self, kind: str, looks: Sequence[tuple[Sequence[float] | Mapping, str]], **options) -> Decision:
        """Follow a claim through its looks ((differences so far, premise state) per look, in order): the
        decision at the first look where it stops, frozen (later looks are never read), else the last one."""
        decision = None
        for k, (differences, premise) in enumerate(looks, start=1):
            decision = self.decide(kind, differences, k, premise=premise, **options)
            if decision.stop:
                return decision
        if decision is None:
            raise ValueError("no look given")
        return decision

    def describe(self) -> str:
        """The design as a markdown paragraph and boundary table, for report.md."""
        budget = f"at most {self.seed_budget} seeds a claim" if self.seed_budget else "no seed budget beyond the " \
                                                                                     "last look"
        clock = f", a time budget of {self.time_budget_s:g} s" if self.time_budget_s else ""
        spend = spending_name(self.spending)
        text = (
            f"**Sequential design (fixed before any run).** Looks at {', '.join(map(str, self.looks))} seeds "
            f"({budget}{clock}); level {self.alpha:g} (difference: two-sided; equivalence: each one-sided TOST "
            f"test; bound: one-sided), spent by the {spend} function; z boundaries by recursive "
            "numerical integration, turned into t boundaries at each look's df by their nominal p, calibrated "
            f"by simulation (x {self.table(True, self.alpha)[0].calibration:.3f} two-sided, "
            f"x {self.table(False, self.alpha)[0].calibration:.3f} one-sided) so that the t design keeps the "
            "level at these small n. A claim of "
            "several conditions holds when every condition crosses, fails when one contrary test crosses at "
            f"alpha / conditions (Holm's first step). Non-binding futility for a difference at its smallest effect "
            f"of interest (one-sided level {self.futility:g}, same spending, interim looks only): a stop there reads "
            "'smaller than the smallest effect of interest', a settled answer, an effect that large rejected. "
            "The premise is "
            "evaluated at every look on all seeds so far: 'not met' stops the claim (frozen, 'premise not met'); "
            "'uncertain' makes no decision at that look ('premise uncertain' at the last). Ties (the exact "
            "sign-flip case): no stop at that look. A verdict is frozen at the look where it stopped. A claim the "
            "seed or time budget ends before the last look is 'stopped by budget: not resolved', reported with its "
            "repeated confidence interval (the look's t boundary x SE), never a verdict the boundaries did not "
            "give; error rates: benchmarks/RESULTS.md.")
        rows = ["", "| look | seeds | z (two-sided) | nominal p | t | z (one-sided) | nominal p | t |",
                "|---|---|---|---|---|---|---|---|"]
        for two, one in zip(self.table(True, self.alpha), self.table(False, self.alpha)):
            rows.append(f"| {two.look} | {two.n} | {two.z:.3f} | {two.nominal_p:.2g} | {two.t:.2f} | {one.z:.3f} | "
                        f"{one.nominal_p:.2g} | {one.t:.2f} |")
        return text + "\n" + "\n".join(rows)


def spending_name(spending: str) -> str:
    """A spending value in words: "Lan-DeMets O'Brien-Fleming-type", "Hwang-Shih-DeCani (gamma -4)"."""
    gamma = hsd_gamma(spending)
    if gamma is not None:
        return f"Hwang-Shih-DeCani (gamma {gamma:g})"
    return "Lan-DeMets " + ("O'Brien-Fleming-type" if spending == OBRIEN_FLEMING else "Pocock-type")


# The main job's design for the central claims (C1, C2, C4: gaps, sesoi 2 pp at quick), chosen by simulation
# (benchmarks/design_choice.py, benchmarks/RESULTS.md "2026-12-06: the main job's design, chosen by simulation
# (issue 36)", docs/sequential-design.md): power 0.907 at 2 pp with SD 3.12 and train-to-target's premise voids
# (100,000 fresh paths), every look able to stop, the least expected time at 2 pp among 684 candidates with a
# futility rule: 1.47 h for the three claims on two workers (1.34 h at a gap of 0; 2.24 h at most).
MAIN_DESIGN = Design(looks=(15, 27, 36), spending=hsd(0), futility=0.05)


REASONS = {
    OPEN: "look {look}: no boundary crossed; the claim gets the next look's seeds",
    SUPPORTED: "look {look}: every condition crossed the efficacy boundary",
    NOT_SUPPORTED: "look {look}: a condition crossed the contrary boundary (at alpha / conditions)",
    EQUIVALENT: "look {look}: both one-sided tests crossed their boundaries within +/-{margin:g} in every condition",
    NOT_EQUIVALENT: "look {look}: a condition lies beyond the margin +/-{margin:g} by its boundary",
    FUTILE: "look {look}: smaller than the smallest effect of interest: the futility test puts the effect below "
            "{bound:.3g}, so an effect of {sesoi:g} or more is rejected (one-sided, level {futility:g} over the "
            "looks; settled: a smaller effect, zero included, is neither claimed nor excluded)",
    NOT_RESOLVED: "look {look} (the last): no boundary crossed",
    BUDGET: "look {look}: the budget ends the claim before the design's last look; no boundary crossed",
}


# Power by simulation (`difference_power`), for planning a design: the package's own boundaries (`Design.codes`)
# on seeded normal paths, with the train-to-target premise's per-seed flags (premises.RunFitRule) voiding a claim at
# the first look where more than MAX_FLAGGED_SHARE of its seeds so far are flagged, as the real rule does.
POWER_SIMS = 20_000  # paths per truth: a power of 0.9 to MC SE 0.002
POWER_SEED = 20261206  # fixed: a plan is the same on every machine; common to every design (common random numbers)
FLAG_CHANCE = 0.15  # chance a seed is flagged under train-to-target: the fit pilot's 2 of 13 seeds
# (docs/train-to-target.md, benchmarks/RESULTS.md 2026-12-06); a planning figure, not a rule


def allowed_flags(seeds: int | np.ndarray) -> np.ndarray:
    """The most flagged seeds a claim on `seeds` seeds stands with (premises.RunFitRule.allowed)."""
    return np.floor(MAX_FLAGGED_SHARE * np.asarray(seeds) + 1e-9).astype(int)


def void_chance(seeds: int, flag_chance: float = FLAG_CHANCE) -> float:
    """The chance that more than MAX_FLAGGED_SHARE of `seeds` independent seeds are flagged (one look alone)."""
    from scipy.stats import binom

    return float(binom.sf(allowed_flags(seeds), seeds, flag_chance))


@dataclasses.dataclass(frozen=True)
class Operating:
    """A difference claim's fate under a design at one truth, by simulation: each verdict's chance at each look."""

    design: Design
    effect: float  # the true mean difference
    sd: float  # the true SD of a seed's difference
    sesoi: float | None  # futility's smallest effect of interest (None: no futility rule)
    flag_chance: float  # each seed's chance to be flagged by the premise (0: no voids)
    sims: int
    by_look: tuple[Mapping[str, float], ...]  # per look: verdict -> chance the claim stops there with it

    def chance(self, *verdicts: str) -> float:
        """The chance of ending with any of these verdicts, at any look."""
        return float(sum(look.get(v, 0.0) for look in self.by_look for v in verdicts))

    @property
    def power(self) -> float:
        """The chance of 'supported' (for a positive effect: the claim holds)."""
        return self.chance(SUPPORTED)

    @property
    def stops(self) -> tuple[float, ...]:
        """Per look: the chance the claim stops there, whatever its verdict (the last look: every claim left)."""
        return tuple(float(sum(v for k, v in look.items() if k != OPEN)) for look in self.by_look)

    @property
    def reaches(self) -> tuple[float, ...]:
        """Per look: the chance the claim is still open when the look runs (so its seeds are trained)."""
        return tuple(1.0 - float(np.sum(self.stops[:k])) for k in range(len(self.by_look)))

    @property
    def expected_seeds(self) -> float:
        return float(np.dot(self.stops, self.design.looks[:len(self.by_look)]))

    @property
    def mc_se(self) -> float:
        """Monte Carlo SE of the power."""
        return math.sqrt(max(self.power * (1 - self.power), 1e-12) / self.sims)


def difference_power(design: Design, effect: float, sd: float, sesoi: float | None = None, *,
                     flag_chance: float = 0.0, sims: int = POWER_SIMS, seed: int = POWER_SEED) -> Operating:
    """A difference claim's operating characteristics under `design` (its seed budget included) when each seed's
    paired difference is normal with this mean `effect` and `sd`: at every look the premise's flags first (each seed
    flagged with chance `flag_chance`, independently of its difference; void, 'premise not met', when more than a
    third of the seeds so far are flagged), then the design's own `codes` with futility at `sesoi`; a verdict is
    frozen where it stops. Power = `.power`, at the smallest effect of interest: difference_power(d, sesoi, sd,
    sesoi, flag_chance=FLAG_CHANCE). Seeded: the same draws for every design, prefix by prefix (common random
    numbers), so designs compare with less noise than their MC SE."""
    if not sd > 0 or not math.isfinite(effect) or not 0 <= flag_chance < 1 or sims < 1:
        raise ValueError(f"difference_power needs sd > 0, a finite effect, flag_chance in [0, 1) and sims >= 1; "
                         f"got sd={sd!r}, effect={effect!r}, flag_chance={flag_chance!r}, sims={sims!r}")
    looks = design.looks[:design.reachable]
    most = looks[-1]
    # draws seed by seed (rows), so a design with more seeds shares every path's first seeds with one with fewer
    z = np.random.default_rng([seed, 0]).standard_normal((most, sims))
    flagged = np.cumsum(np.random.default_rng([seed, 1]).random((most, sims)) < flag_chance, axis=0)
    total, squares = np.cumsum(z, axis=0), np.cumsum(z ** 2, axis=0)
    verdict = np.full(sims, CODE[OPEN])
    by_look = []
    for k, n in enumerate(looks, start=1):
        open_ = verdict == CODE[OPEN]
        mean_z = total[n - 1] / n
        sd_z = np.sqrt(np.maximum(squares[n - 1] - n * mean_z ** 2, 0.0) / (n - 1))
        now = design.codes(DIFFERENCE, (effect + sd * mean_z)[:, None], (sd * sd_z)[:, None], n, k, sesoi=sesoi,
                           final=k == len(looks))
        now[flagged[n - 1] > allowed_flags(n)] = CODE[PREMISE_NOT_MET]
        now[~open_] = CODE[OPEN]  # stopped earlier: frozen there
        counts = np.bincount(now[open_], minlength=len(VERDICTS)) / sims
        by_look.append({VERDICTS[c]: float(p) for c, p in enumerate(counts) if p > 0 and VERDICTS[c] != OPEN})
        verdict = np.where(open_, now, verdict)
    return Operating(design, float(effect), float(sd), sesoi, float(flag_chance), sims, tuple(by_look))


def statistics(kind: str, mean: np.ndarray, se: np.ndarray, margin: float | None):
    """t statistics toward the claim (must cross the efficacy boundary in every condition) and against it (one
    crossing the contrary boundary fails the claim)."""
    if kind == DIFFERENCE:
        return mean / se, -mean / se
    if kind == EQUIVALENCE:  # TOST: the weaker of the two one-sided tests; against: beyond either margin
        return np.minimum(mean + margin, margin - mean) / se, np.maximum(mean - margin, -margin - mean) / se
    return (margin - mean) / se, (mean - margin) / se


def summarize(differences: Sequence[float]) -> tuple[float, float, int, bool]:
    """mean, sd, n of the finite differences, and whether the t model fits them (stats.t_model_fits)."""
    d, _ = finite(differences)
    if len(d) < MIN_FIRST_LOOK:
        return math.nan, math.nan, len(d), False
    return float(d.mean()), float(d.std(ddof=1)), len(d), t_model_fits(d)


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown test kind {kind!r}; a sequential design handles {', '.join(KINDS)}")
