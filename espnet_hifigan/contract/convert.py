"""Reconciliation: features that differ from a consumer's contract only in normalisation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Tuple

import numpy as np

from espnet_hifigan.contract.model import FeatureContract
from espnet_hifigan.contract.report import ContractMismatch


@dataclass
class FeatureConversion:
    """Turns features of one contract into those of another that differs only in normalisation.

    Args:
        source: The input features' contract.
        target: The contract the consumer expects.

    Attributes:
        identity: True when nothing needs to be done.
    """

    source: FeatureContract
    target: FeatureContract
    identity: bool = field(default=True, init=False)
    _denorm: Any = field(default=None, init=False, repr=False)
    _norm: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        same = (self.source.normalize is None and self.target.normalize is None) or (
            self.source.normalize is not None
            and self.target.normalize is not None
            and self.source.normalize.same_as(self.target.normalize)
        )
        self.identity = same
        if not same:
            if self.source.normalize is not None:
                self._denorm = self.source.normalize.module()
            if self.target.normalize is not None:
                self._norm = self.target.normalize.module()

    def describe(self) -> str:
        """What the conversion does, for the log."""
        if self.identity:
            return "features match the vocoder's contract; no conversion"
        steps = []
        if self._denorm is not None:
            steps.append(f"de-normalising with {self.source.normalize.describe()}")
        if self._norm is not None:
            steps.append(f"normalising with {self.target.normalize.describe()}")
        return "features differ from the vocoder's contract only in normalisation: " + ", then ".join(steps)

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        """Convert one utterance.

        Args:
            feats: Features (frames, n_mels) under :attr:`source`.

        Returns:
            float32 features (frames, n_mels) under :attr:`target`.
        """
        if self.identity:
            return feats
        import torch

        x = torch.as_tensor(np.array(feats, dtype=np.float32, copy=True)).unsqueeze(0)
        with torch.no_grad():
            if self._denorm is not None:
                x, _ = self._denorm.inverse(x)
            if self._norm is not None:
                x, _ = self._norm(x)
        return x[0].numpy()


def reconcile(
    source: FeatureContract,
    target: FeatureContract,
    hint: str = "",
    labels: Tuple[str, str] = ("features", "vocoder"),
) -> FeatureConversion:
    """Check that ``source`` features can feed a consumer expecting ``target``.

    Args:
        source: Contract of the features at hand.
        target: Contract the consumer (vocoder, training data) expects.
        hint: Appended to the mismatch message.
        labels: Names of the two sides in the mismatch table.

    Returns:
        The conversion (identity, or de-/re-normalisation).

    Raises:
        ContractMismatch: any field other than the normalisation differs.
        ContractError: the normalisation differs and the statistics needed are unavailable.
    """
    diffs = source.compare(target, include_normalization=False)
    if diffs:
        raise ContractMismatch(diffs, source, target, hint, labels)
    return FeatureConversion(source, target)
