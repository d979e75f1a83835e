"""Zeroing the optimiser state of reset weights, so old moments do not steer the new ones."""
from __future__ import annotations

import torch


def zero_optimizer_state_(optimizer: torch.optim.Optimizer | None, param: torch.Tensor, index: torch.Tensor,
                          dim: int) -> None:
    """Zero every per-entry state tensor of `param` (Adam's exp_avg, exp_avg_sq, max_exp_avg_sq; SGD's
    momentum_buffer) at positions `index` along `dim`.

    Per-tensor scalars (Adam's `step`) are shared by the whole tensor and stay: torch's Adam has no per-entry
    step count, so a reset entry's first update uses the tensor's bias correction (Dohare's AdamGnT keeps
    per-entry steps; shibhansh/loss-of-plasticity `lop/utils/AdamGnT.py`).
    """
    if optimizer is None:
        return
    state = optimizer.state.get(param)  # .get: optimizer.state is a defaultdict, indexing would add an entry
    for value in (state or {}).values():
        if torch.is_tensor(value) and value.shape == param.shape:
            value.index_fill_(dim, index.to(value.device), 0)
