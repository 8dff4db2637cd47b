"""How the generator turn calls the discriminator: with its parameters frozen (no gradients
for them are built) and its weight-normed weights computed once for the two calls."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch.nn.utils.weight_norm import WeightNorm


@contextlib.contextmanager
def frozen(module: torch.nn.Module) -> Iterator[None]:
    """Build the graph through ``module`` without gradients for its parameters."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


@contextlib.contextmanager
def weight_norms_computed_once(module: torch.nn.Module, enabled: bool = True) -> Iterator[None]:
    """Compute every weight-normed weight of ``module`` once for the calls inside (fixed params).

    The generator turn scores the fake and the real waveform with the same, frozen discriminator:
    weight norm would recompute ~70M weights for each call. Spectral norm (its power iteration
    runs per call, as in the official code) and every other hook are untouched.
    """
    saved = []
    if enabled:
        for m in module.modules():
            hooks = list(m._forward_pre_hooks.items())
            norms = [k for k, h in hooks if isinstance(h, WeightNorm)]
            if norms:
                for k in norms:
                    m._forward_pre_hooks[k](m, ())  # sets m.<name> from g and v
                    del m._forward_pre_hooks[k]
                saved.append((m, hooks))
    try:
        yield
    finally:
        for m, hooks in saved:
            m._forward_pre_hooks.clear()
            m._forward_pre_hooks.update(hooks)
