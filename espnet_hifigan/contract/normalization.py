"""The normalisation state of features: raw, or ESPnet ``GlobalMVN`` with named statistics."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence

from espnet_hifigan.contract.base import ContractError
from espnet_hifigan.core.fileio import PathLike, file_sha256, resolve_relative

NORMALIZE_KINDS = ("global_mvn",)


@dataclass(frozen=True)
class Normalization:
    """Global mean/variance normalisation of features (ESPnet ``GlobalMVN``).

    Args:
        kind: ``"global_mvn"``.
        stats_file: The statistics (``feats_stats.npz``: count/sum/sum_square) or ``None`` when
            only the digest is known (a packed model keeps its stats inside the archive).
        sha256: SHA-256 of the statistics file; ``None`` when the file was not found.
        norm_means: Subtract the mean.
        norm_vars: Divide by the standard deviation.
    """

    kind: str = "global_mvn"
    stats_file: Optional[str] = None
    sha256: Optional[str] = None
    norm_means: bool = True
    norm_vars: bool = True

    def __post_init__(self) -> None:
        if self.kind not in NORMALIZE_KINDS:
            raise ContractError(f"unsupported normalisation {self.kind!r} (supported: {NORMALIZE_KINDS})")

    @classmethod
    def from_stats_file(cls, stats_file: PathLike, norm_means: bool = True, norm_vars: bool = True) -> "Normalization":
        """Describe ``stats_file``, hashing it when it exists."""
        path = Path(stats_file)
        sha = file_sha256(path) if path.is_file() else None
        return cls(stats_file=str(path), sha256=sha, norm_means=bool(norm_means), norm_vars=bool(norm_vars))

    def same_as(self, other: "Normalization") -> bool:
        """Same statistics (by digest when both are known, else by path) and the same flags."""
        if (self.kind, self.norm_means, self.norm_vars) != (other.kind, other.norm_means, other.norm_vars):
            return False
        if self.sha256 is not None and other.sha256 is not None:
            return self.sha256 == other.sha256
        return self.stats_file is not None and self.stats_file == other.stats_file

    def describe(self) -> str:
        """One-line description: kind, file and digest."""
        flags = "" if self.norm_means and self.norm_vars else f" (means={self.norm_means}, vars={self.norm_vars})"
        sha = f" sha256:{self.sha256[:12]}" if self.sha256 else " sha256:unknown"
        return f"{self.kind} {self.stats_file or '<inline>'}{sha}{flags}"

    def to_dict(self) -> Dict[str, Any]:
        """YAML-ready mapping."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Normalization":
        """Inverse of :meth:`to_dict` (unknown keys are an error)."""
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ContractError(f"unknown normalisation keys {sorted(unknown)}")
        return cls(**data)

    def module(self):
        """ESPnet's ``GlobalMVN`` for these statistics (the exact module the TTS used).

        Raises:
            ContractError: the file is missing or its digest differs from the recorded one, or
                torch/ESPnet are not installed (the onnxruntime-only install feeds raw features).
        """
        try:
            from espnet2.layers.global_mvn import GlobalMVN
        except ImportError as e:
            raise ContractError(
                f"converting features normalised with {self.describe()} needs torch and ESPnet, which this "
                "install lacks: give raw (de-normalised) features, e.g. a TTS's denorm/feats.scp, or install the "
                "full package"
            ) from e

        if self.stats_file is None or not Path(self.stats_file).is_file():
            raise ContractError(f"normalisation statistics {self.stats_file} not found; cannot convert features")
        if self.sha256 is not None and file_sha256(self.stats_file) != self.sha256:
            raise ContractError(
                f"normalisation statistics {self.stats_file} changed: sha256 differs from the recorded "
                f"{self.sha256[:12]}; the features were normalised with other statistics"
            )
        return GlobalMVN(self.stats_file, norm_means=self.norm_means, norm_vars=self.norm_vars)




def vocoder_normalization(config: Mapping[str, Any], stats_dirs: Sequence[PathLike] = ()) -> Optional[Normalization]:
    """The normalisation one of our vocoders applies itself (``normalize``/``normalize_conf``)."""
    if config.get("normalize") is None:
        return None
    conf = config.get("normalize_conf") or {}
    stats = conf.get("stats_file")
    if stats is None:
        return Normalization(norm_means=conf.get("norm_means", True), norm_vars=conf.get("norm_vars", True))
    return Normalization.from_stats_file(
        resolve_relative(stats, [Path(d) for d in stats_dirs]), conf.get("norm_means", True), conf.get("norm_vars", True)
    )

