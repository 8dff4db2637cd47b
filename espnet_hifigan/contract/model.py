"""The feature contract: every setting that makes two log-mel spectrograms interchangeable.

A vocoder only sounds right on the features it was trained on. A :class:`FeatureContract`
records all of them — sampling rate, STFT (n_fft, hop, window length and function, padding),
mel bank (bins, fmin, fmax, scale), log (base, floors) and the normalisation state (raw, or
global mean/variance normalised with a named statistics file and its SHA-256) — so that a
feature dump, an ESPnet TTS experiment and a vocoder can be compared field by field
(:meth:`FeatureContract.compare`) before any audio is written.

:meth:`FeatureContract.load` reads a contract from any file that defines one: our own
``feats_conf.yaml`` / ``feature_contract.yaml`` / vocoder ``config.yaml`` / packed ``model.zip``,
or a foreign format's config, translated by :mod:`espnet_hifigan.contract.foreign`
(ESPnet TTS ``config.yaml``, official ``config.json``, ParallelWaveGAN ``config.yml``).
Neither imports torch or ESPnet, so that contract checks stay cheap.
"""

from __future__ import annotations

import dataclasses
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import yaml

from espnet_hifigan.contract.base import ContractError, load_mapping
from espnet_hifigan.contract.foreign import (
    espnet_tts_fields,
    is_espnet_tts_config,
    official_fields,
    packed_member,
    pwg_fields,
)
from espnet_hifigan.contract.normalization import Normalization
from espnet_hifigan.core.conventions import (
    LOGMEL_DEFAULTS,
    MAGNITUDE_EPS_MODES,
    MEL_SCALES,
    PADDING_MODES,
    num_frames,
)
from espnet_hifigan.core.fileio import PathLike, write_text_atomic

CONTRACT_VERSION = 1
# File names: our full contract, and the one stage 3 of voc.sh writes next to a feats.scp.
CONTRACT_FILE = "feature_contract.yaml"
FEATS_CONF_FILE = "feats_conf.yaml"
# Extra key of a saved contract: the normalisation a vocoder applies itself (informative only).
VOCODER_NORMALIZE_KEY = "vocoder_normalize"
# Two float settings are equal within this relative tolerance (YAML round trips, 7600 vs 7600.0).
FLOAT_REL_TOL = 1.0e-9

# Fields of a contract in display order, with what they mean (the mismatch table's last column).
FIELD_DESCRIPTIONS: Dict[str, str] = {
    "fs": "sampling rate (Hz)",
    "n_fft": "FFT size",
    "hop_length": "frame shift (samples)",
    "win_length": "window length (samples)",
    "window": "window function",
    "n_mels": "mel bins",
    "fmin": "lowest mel frequency (Hz)",
    "fmax": "highest mel frequency (Hz)",
    "mel_scale": "mel scale and filter normalisation",
    "log_base": "logarithm base",
    "mel_floor": "floor of mel energies before the log",
    "magnitude_eps": "floor of the power spectrum before sqrt",
    "magnitude_eps_mode": "how magnitude_eps is applied",
    "padding": "framing: center (T//hop+1), official (T//hop), none",
    "stft_normalized": "STFT scaled by 1/sqrt(n_fft)",
    "normalize": "normalisation of the features",
}
# Our LogMelSpectrogram's keyword arguments (= a feats_conf.yaml), in its order.
LOGMEL_FIELDS: Tuple[str, ...] = (
    "fs", "n_fft", "hop_length", "win_length", "window", "n_mels", "fmin", "fmax", "log_base",
    "mel_floor", "magnitude_eps", "magnitude_eps_mode", "padding",
)


def _values_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=FLOAT_REL_TOL, abs_tol=0.0)
    return a == b


def _parse_fs(fs: Union[int, float, str]) -> int:
    """ESPnet accepts ``fs: 22k``-style strings (humanfriendly); so do we."""
    if isinstance(fs, str):
        try:
            import humanfriendly
        except ImportError as e:  # the onnxruntime-only install
            raise ContractError(f"fs {fs!r}: a size string needs `pip install humanfriendly`; or write a number") from e
        return int(humanfriendly.parse_size(fs))
    return int(fs)


@dataclass(frozen=True)
class FieldDiff:
    """One differing field: its name and the two values."""

    name: str
    left: Any
    right: Any


@dataclass(frozen=True)
class FeatureContract:
    """Everything that defines a log-mel feature, resolved to explicit values.

    ``None`` defaults are resolved on construction: ``win_length`` -> ``n_fft``, ``fmin`` -> 0,
    ``fmax`` -> ``fs / 2``; ``log_base`` stays ``None`` for the natural log (``e`` is folded to
    ``None``).

    Args:
        fs: Sampling rate in Hz.
        n_fft: FFT size.
        hop_length: Frame shift in samples.
        win_length: Window length in samples.
        window: Window function name (``hann``, ...; ``none`` = rectangular).
        n_mels: Number of mel bins.
        fmin: Lowest mel frequency in Hz.
        fmax: Highest mel frequency in Hz.
        log_base: Base of the logarithm; ``None`` = natural log.
        mel_floor: Lower clamp of mel energies before the log.
        magnitude_eps: Floor of the power spectrum before the square root.
        magnitude_eps_mode: ``clamp`` (``sqrt(max(p, eps))``) or ``add`` (``sqrt(p + eps)``).
        padding: ``center`` (frames = samples // hop + 1), ``official`` (reflect
            ``(n_fft - hop) / 2``, frames = samples // hop) or ``none`` (no padding).
        mel_scale: ``slaney`` (Slaney scale and area normalisation, librosa's default) or ``htk``.
        stft_normalized: STFT multiplied by ``1 / sqrt(n_fft)``.
        normalize: ``None`` for raw log-mel, else the normalisation the features carry.
        source: Where the contract came from (messages only; never compared).
    """

    fs: int
    n_fft: int
    hop_length: int
    win_length: Optional[int]
    window: str
    n_mels: int
    fmin: Optional[float]
    fmax: Optional[float]
    log_base: Optional[float]
    mel_floor: float
    magnitude_eps: float
    magnitude_eps_mode: str
    padding: str
    mel_scale: str = "slaney"
    stft_normalized: bool = False
    normalize: Optional[Normalization] = None
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        def set_(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        set_("fs", _parse_fs(self.fs))
        set_("n_fft", int(self.n_fft))
        set_("hop_length", int(self.hop_length))
        set_("win_length", self.n_fft if self.win_length is None else int(self.win_length))
        set_("window", "none" if self.window is None else str(self.window))
        set_("n_mels", int(self.n_mels))
        set_("fmin", 0.0 if self.fmin is None else float(self.fmin))
        set_("fmax", self.fs / 2.0 if self.fmax is None else float(self.fmax))
        if self.log_base is not None:
            base = float(self.log_base)
            set_("log_base", None if math.isclose(base, math.e) else base)
        set_("mel_floor", float(self.mel_floor))
        set_("magnitude_eps", float(self.magnitude_eps))
        set_("stft_normalized", bool(self.stft_normalized))
        if isinstance(self.normalize, Mapping):
            set_("normalize", Normalization.from_dict(self.normalize))
        for name, allowed in (
            ("padding", PADDING_MODES),
            ("magnitude_eps_mode", MAGNITUDE_EPS_MODES),
            ("mel_scale", MEL_SCALES),
        ):
            if getattr(self, name) not in allowed:
                raise ContractError(f"{self.source or 'contract'}: {name} must be one of {allowed}, got {getattr(self, name)!r}")
        if min(self.fs, self.n_fft, self.hop_length, self.win_length, self.n_mels) <= 0:
            raise ContractError(f"{self.source or 'contract'}: fs, n_fft, hop_length, win_length and n_mels must be positive")

    # ---------------------------------------------------------------- constructors
    @classmethod
    def from_logmel(
        cls,
        params: Mapping[str, Any],
        normalize: Optional[Normalization] = None,
        source: str = "",
    ) -> "FeatureContract":
        """From our ``LogMelSpectrogram`` keyword arguments (missing ones take its defaults).

        Args:
            params: ``feats_extract_conf`` or ``LogMelSpectrogram.get_parameters()``; may also
                hold ``mel_scale``/``stft_normalized``/``normalize`` (a saved contract).
            normalize: The features' normalisation (``None``: raw).
            source: Description for messages.
        """
        values: Dict[str, Any] = dict(LOGMEL_DEFAULTS)  # LogMelSpectrogram's defaults
        extra = {"mel_scale", "stft_normalized", "normalize"}
        unknown = set(params) - set(LOGMEL_FIELDS) - extra - {"contract_version", VOCODER_NORMALIZE_KEY}
        if unknown:
            raise ContractError(f"{source or 'feature settings'}: unknown fields {sorted(unknown)}")
        values.update({k: v for k, v in params.items() if k in LOGMEL_FIELDS or k in extra})
        if normalize is not None:
            values["normalize"] = normalize
        return cls(**values, source=source)

    @classmethod
    def from_train_config(cls, config: Union[PathLike, Mapping[str, Any]], source: str = "") -> "FeatureContract":
        """The input contract of one of our vocoders: raw log-mel of ``feats_extract_conf``.

        The vocoder normalises internally; that normalisation is :func:`vocoder_normalization`.
        """
        if not isinstance(config, Mapping):
            source = source or str(config)
            config = load_mapping(config)
        if config.get("feats_extract", "log_mel") != "log_mel":
            raise ContractError(f"{source}: feats_extract {config.get('feats_extract')!r} is not log_mel")
        return cls.from_logmel(config.get("feats_extract_conf") or {}, source=source or "vocoder config")

    @classmethod
    def from_espnet_tts_config(
        cls,
        config: Union[PathLike, Mapping[str, Any]],
        normalized: bool = False,
        base_dirs: Sequence[PathLike] = (),
        source: str = "",
    ) -> "FeatureContract":
        """The features of an ESPnet TTS experiment (``feats_extract: fbank``), raw or normalised.

        Args:
            config: The TTS ``config.yaml`` (path or mapping).
            normalized: Describe the normalised features (``norm/feats.scp``: normalised with
                the TTS's ``normalize_conf.stats_file`` if the TTS normalises) instead of the raw
                ones (``denorm/feats.scp``).
            base_dirs: Where to look for a relative stats file besides the current directory
                (default: the parents of the config file, i.e. the recipe directory).
            source: Description for messages.

        See :func:`espnet_hifigan.contract.foreign.espnet_tts_fields` for the conventions.
        """
        if not isinstance(config, Mapping):
            path = Path(config)
            source = source or str(path)
            base_dirs = tuple(base_dirs) or tuple(path.resolve().parents)
            config = load_mapping(path)
        return cls(**espnet_tts_fields(config, normalized, base_dirs, source or "ESPnet TTS config"))

    @classmethod
    def from_official_config(cls, config: Union[PathLike, Mapping[str, Any]], source: str = "") -> "FeatureContract":
        """The mel of an official jik876/hifi-gan ``config.json`` (path or mapping)."""
        if not isinstance(config, Mapping):
            source = source or str(config)
            config = load_mapping(config)
        return cls(**official_fields(config), source=source or "official config.json")

    @classmethod
    def from_pwg_config(
        cls,
        config: Union[PathLike, Mapping[str, Any]],
        normalize: Optional[Normalization] = None,
        source: str = "",
    ) -> "FeatureContract":
        """The features of a ParallelWaveGAN ``config.yml`` (path or mapping); see
        :func:`espnet_hifigan.contract.foreign.pwg_fields`."""
        if not isinstance(config, Mapping):
            source = source or str(config)
            config = load_mapping(config)
        return cls(**pwg_fields(config, normalize), source=source or "ParallelWaveGAN config.yml")

    @classmethod
    def load(cls, path: PathLike) -> "FeatureContract":
        """Read a contract from any file that defines one.

        Detected by content: a saved contract / ``feats_conf.yaml`` (flat fields), a packed
        ``model.zip``, one of our vocoder ``config.yaml`` files (``feats_extract_conf``), an
        ESPnet TTS ``config.yaml`` (``feats_extract: fbank``; raw features), an official
        ``config.json`` or a ParallelWaveGAN ``config.yml``.
        """
        path = Path(path)
        if not path.is_file():
            raise ContractError(f"feature contract {path} not found")
        if zipfile.is_zipfile(path):
            kind, data, source = packed_member(path)
            return cls.from_dict(data, source=source) if kind == "contract" else cls.from_train_config(data, source)
        data = load_mapping(path)
        if is_espnet_tts_config(data) or data.get("feats_extract") == "fbank":
            return cls.from_espnet_tts_config(path)
        if "feats_extract_conf" in data or "generator_conf" in data:
            return cls.from_train_config(data, source=str(path))
        if "sampling_rate" in data and "hop_size" in data:
            if "fft_size" in data or "generator_params" in data:
                return cls.from_pwg_config(data, source=str(path))
            return cls.from_official_config(data, source=str(path))
        if "fs" in data and "hop_length" in data:
            return cls.from_dict(data, source=str(path))
        raise ContractError(f"{path} does not describe log-mel features (no known contract fields)")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "") -> "FeatureContract":
        """From :meth:`to_dict` output or a flat ``feats_conf.yaml`` (vocoder_normalize ignored)."""
        data = dict(data)
        version = data.pop("contract_version", CONTRACT_VERSION)
        if int(version) > CONTRACT_VERSION:
            raise ContractError(f"{source}: contract_version {version} is newer than this code ({CONTRACT_VERSION})")
        data.pop(VOCODER_NORMALIZE_KEY, None)
        normalize = data.pop("normalize", None)
        return cls.from_logmel(
            data, normalize=None if normalize is None else Normalization.from_dict(normalize), source=source
        )

    # ---------------------------------------------------------------- output
    def to_dict(self) -> Dict[str, Any]:
        """YAML-ready mapping: the ``LogMelSpectrogram`` fields first, then the rest."""
        data: Dict[str, Any] = {"contract_version": CONTRACT_VERSION}
        for name in LOGMEL_FIELDS + ("mel_scale", "stft_normalized"):
            data[name] = getattr(self, name)
        data["normalize"] = None if self.normalize is None else self.normalize.to_dict()
        return data

    def save(self, path: PathLike, vocoder_normalize: Optional[Normalization] = None) -> Path:
        """Write the contract as commented YAML (atomically).

        Args:
            path: Destination.
            vocoder_normalize: For a vocoder's contract: the normalisation it applies itself
                (recorded, never compared).
        """
        path = Path(path)
        data = self.to_dict()
        if vocoder_normalize is not None:
            data[VOCODER_NORMALIZE_KEY] = vocoder_normalize.to_dict()
        lines = [
            "# Feature contract (espnet_hifigan.contract.FeatureContract): every setting of these log-mel features.",
            f"# source: {self.source}" if self.source else "# source: -",
        ]
        for key, value in data.items():
            rendered = yaml.safe_dump({key: value}, default_flow_style=False, sort_keys=False).rstrip()
            comment = FIELD_DESCRIPTIONS.get(key)
            if comment and "\n" not in rendered:
                rendered += f"  # {comment}"
            lines.append(rendered)
        return write_text_atomic(path, "\n".join(lines) + "\n")

    def save_feats_conf(self, path: PathLike) -> Path:
        """Write raw features' settings in the flat ``feats_conf.yaml`` form of voc.sh stage 3.

        That file lists exactly ``LogMelSpectrogram``'s arguments, so that ``extract_feats
        --check_conf`` can compare it; the full contract is :meth:`save`'s.
        """
        if self.normalize is not None:
            raise ContractError(f"{self.source}: feats_conf.yaml describes raw features only")
        path = Path(path)
        lines = ["# Feature settings (LogMelSpectrogram arguments) of the log-mel features in this directory."]
        for key, value in self.logmel_params().items():
            rendered = yaml.safe_dump({key: value}, default_flow_style=False).rstrip()
            lines.append(f"{rendered}  # {FIELD_DESCRIPTIONS[key]}")
        return write_text_atomic(path, "\n".join(lines) + "\n")

    def logmel_params(self) -> Dict[str, Any]:
        """Keyword arguments of our ``LogMelSpectrogram`` computing these (raw) features.

        Raises:
            ContractError: a setting ``LogMelSpectrogram`` cannot reproduce (HTK mel scale,
                normalised STFT, no padding).
        """
        unsupported = []
        if self.mel_scale != "slaney":
            unsupported.append(f"mel_scale={self.mel_scale}")
        if self.stft_normalized:
            unsupported.append("stft_normalized=true")
        if self.padding == "none":
            unsupported.append("padding=none")
        if unsupported:
            raise ContractError(f"{self.source}: LogMelSpectrogram cannot compute {', '.join(unsupported)}")
        return {name: getattr(self, name) for name in LOGMEL_FIELDS}

    def num_frames(self, num_samples: int) -> int:
        """Frames of an utterance of ``num_samples`` samples under this contract's framing."""
        return num_frames(num_samples, self.padding, self.hop_length, self.n_fft)

    def raw(self) -> "FeatureContract":
        """The same features without normalisation."""
        return dataclasses.replace(self, normalize=None)

    # ---------------------------------------------------------------- comparison
    def compare(self, other: "FeatureContract", include_normalization: bool = True) -> List[FieldDiff]:
        """Fields whose values differ (floats within a relative 1e-9).

        Args:
            other: The contract to compare with.
            include_normalization: Also compare the normalisation state and statistics.

        Returns:
            One :class:`FieldDiff` per differing field, in display order (empty if equal).
        """
        diffs = []
        for name in FIELD_DESCRIPTIONS:
            mine, theirs = getattr(self, name), getattr(other, name)
            if name == "normalize":
                if not include_normalization:
                    continue
                same = (mine is None and theirs is None) or (
                    mine is not None and theirs is not None and mine.same_as(theirs)
                )
            else:
                same = _values_equal(mine, theirs)
            if not same:
                diffs.append(FieldDiff(name, mine, theirs))
        return diffs

