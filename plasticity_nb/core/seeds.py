"""Seeds derived from a run's seed, so that its random streams (per phase and purpose) never overlap."""
from __future__ import annotations

import numpy as np


def derived_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers, so streams of different phases never overlap."""
    return int(np.random.SeedSequence(list(parts)).generate_state(2, dtype=np.uint64)[0] >> np.uint64(1))
