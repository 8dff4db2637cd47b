"""The mismatch report: a table of the fields two contracts disagree on, and its exception."""

from __future__ import annotations

from typing import Any, Sequence, Tuple

from espnet_hifigan.contract.base import ContractError
from espnet_hifigan.contract.model import FIELD_DESCRIPTIONS, FeatureContract, FieldDiff
from espnet_hifigan.contract.normalization import Normalization


def format_value(value: Any) -> str:
    """Human-readable value for the mismatch table."""
    if isinstance(value, Normalization):
        return value.describe()
    if value is None:
        return "-"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e6:
        return f"{value:.1f}"
    return str(value)


def _display(name: str, value: Any) -> str:
    if name == "log_base" and value is None:
        return "e (natural log)"
    if name == "normalize" and value is None:
        return "raw (not normalised)"
    return format_value(value)


def format_table(
    diffs: Sequence[FieldDiff], left_label: str, right_label: str, describe: bool = True
) -> str:
    """Render differing fields as an aligned text table.

    Args:
        diffs: From :meth:`FeatureContract.compare`.
        left_label: Column title of the left contract (e.g. the TTS features).
        right_label: Column title of the right contract (e.g. the vocoder).
        describe: Add a column saying what each field means.

    Returns:
        The table (lines joined with newlines), or a one-line note when nothing differs.
    """
    if not diffs:
        return "(no differing fields)"
    header = ["field", left_label, right_label] + (["meaning"] if describe else [])
    rows = [
        [d.name, _display(d.name, d.left), _display(d.name, d.right)]
        + ([FIELD_DESCRIPTIONS.get(d.name, "")] if describe else [])
        for d in diffs
    ]
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return " | ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    sep = "-+-".join("-" * w for w in widths)
    return "\n".join([line(header), sep] + [line(r) for r in rows])


class ContractMismatch(ContractError):
    """Features that a vocoder cannot use; ``str()`` includes the table of differing fields.

    Args:
        diffs: The differing fields.
        source: The features' contract.
        target: The vocoder's (or training data's) contract.
        hint: What to do about it.
        labels: Names of the two sides in the table.
    """

    def __init__(
        self,
        diffs: Sequence[FieldDiff],
        source: FeatureContract,
        target: FeatureContract,
        hint: str = "",
        labels: Tuple[str, str] = ("features", "vocoder"),
    ):
        self.diffs = list(diffs)
        self.source_contract = source
        self.target_contract = target
        names = ", ".join(d.name for d in self.diffs)
        table = format_table(self.diffs, *labels)
        width = max(len(label) for label in labels) + 1
        message = (
            f"feature contract mismatch in {names}:\n"
            f"  {(labels[0] + ':').ljust(width)} {source.source or '-'}\n"
            f"  {(labels[1] + ':').ljust(width)} {target.source or '-'}\n{table}"
        )
        if hint:
            message += f"\n{hint}"
        super().__init__(message)
