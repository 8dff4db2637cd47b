"""Feature contracts: every setting that makes two log-mel spectrograms interchangeable.

A vocoder only sounds right on the features it was trained on. A :class:`FeatureContract`
records all of them — sampling rate, STFT (n_fft, hop, window length and function, padding),
mel bank (bins, fmin, fmax, scale), log (base, floors) and the normalisation state (raw, or
global mean/variance normalised with a named statistics file and its SHA-256) — so that a
feature dump, an ESPnet TTS experiment and a vocoder can be compared field by field before
any audio is written.

Sources (:meth:`FeatureContract.load` detects them):

* our ``LogMelSpectrogram`` parameters (``feats_conf.yaml`` of a dump, a vocoder ``config.yaml``,
  a packed ``model.zip``) — :meth:`FeatureContract.from_logmel`, :meth:`from_train_config`;
* an ESPnet TTS ``config.yaml`` (``feats_extract: fbank`` = ``LogMelFbank``: log10, mel and power
  floors 1e-10, ``center=True``; ``normalize: global_mvn`` + ``feats_stats.npz``) —
  :meth:`FeatureContract.from_espnet_tts_config`;
* an official jik876 ``config.json`` (natural log, mel floor 1e-5, ``center=False`` with
  ``(n_fft - hop) / 2`` reflect padding) — :meth:`FeatureContract.from_official_config`;
* a ParallelWaveGAN ``config.yml`` (librosa ``|stft|``, log10, mel floor 1e-10) —
  :meth:`FeatureContract.from_pwg_config`.

Two contracts that differ only in normalisation are reconciled by :func:`reconcile` (de-normalise
with the source's statistics, normalise with the target's); any other difference raises
:class:`ContractMismatch`, whose message is a table of the differing fields.

This module imports torch and ESPnet lazily, so that contract checks stay cheap.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import yaml

PathLike = Union[str, Path]

CONTRACT_VERSION = 1
# File names: our full contract, and the one stage 3 of voc.sh writes next to a feats.scp.
CONTRACT_FILE = "feature_contract.yaml"
FEATS_CONF_FILE = "feats_conf.yaml"
# Inside a packed model (see espnet_hifigan.api.pack_model).
PACKED_CONTRACT = "feature_contract.yaml"
PACKED_CONFIG = "config.yaml"
# Extra key of a saved contract: the normalisation a vocoder applies itself (informative only).
VOCODER_NORMALIZE_KEY = "vocoder_normalize"
# Key under which an exported ParallelWaveGAN config.yml carries our full contract.
PWG_CONTRACT_KEY = "espnet_hifigan_feature_contract"

# Two float settings are equal within this relative tolerance (YAML round trips, 7600 vs 7600.0).
FLOAT_REL_TOL = 1.0e-9
# Directory names ESPnet's tts_inference writes under <decode_dir>/<set>/.
ESPNET_NORM_DIR = "norm"
ESPNET_DENORM_DIR = "denorm"
# How many parent directories discover_contract climbs to find an ESPnet TTS config.yaml.
DISCOVERY_MAX_PARENTS = 4

PADDING_MODES = ("center", "official", "none")
MAGNITUDE_EPS_MODES = ("clamp", "add")
MEL_SCALES = ("slaney", "htk")
NORMALIZE_KINDS = ("global_mvn",)
# ESPnet GlobalMVN's variance floor (espnet2.layers.global_mvn.GlobalMVN eps default).
GLOBAL_MVN_EPS = 1.0e-20

# The fixed conventions of the implementations we read contracts from.
ESPNET_FBANK_CONVENTIONS: Dict[str, Any] = dict(  # espnet2 LogMelFbank / Stft / LogMel
    mel_floor=1.0e-10, magnitude_eps=1.0e-10, magnitude_eps_mode="clamp"
)
OFFICIAL_CONVENTIONS: Dict[str, Any] = dict(  # jik876/hifi-gan meldataset.mel_spectrogram
    window="hann", log_base=None, mel_floor=1.0e-5, magnitude_eps=1.0e-9,
    magnitude_eps_mode="add", padding="official", mel_scale="slaney", stft_normalized=False,
)
PWG_CONVENTIONS: Dict[str, Any] = dict(  # parallel_wavegan.bin.preprocess.logmelfilterbank
    mel_floor=1.0e-10, magnitude_eps=0.0, magnitude_eps_mode="clamp", padding="center",
    mel_scale="slaney", stft_normalized=False,
)
PWG_DEFAULT_LOG_BASE = 10.0

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


class ContractError(ValueError):
    """A contract that cannot be read, built or applied (the message names the file)."""


# ------------------------------------------------------------------------------ helpers
def file_sha256(path: PathLike) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _load_mapping(path: PathLike) -> Dict[str, Any]:
    """Read a YAML or JSON mapping, naming the file on failure."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ContractError(f"cannot read {path}: {e}") from e
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as e:
        raise ContractError(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {e}") from e
    if not isinstance(data, dict):
        raise ContractError(f"{path} does not hold a mapping")
    return data


def _values_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=FLOAT_REL_TOL, abs_tol=0.0)
    return a == b


def _parse_fs(fs: Union[int, float, str]) -> int:
    """ESPnet accepts ``fs: 22k``-style strings (humanfriendly); so do we."""
    if isinstance(fs, str):
        import humanfriendly

        return int(humanfriendly.parse_size(fs))
    return int(fs)


def resolve_relative(path: PathLike, anchors: Iterable[Path]) -> Path:
    """Find a relative path as given (cwd) or under one of ``anchors`` (first that exists)."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path
    for anchor in anchors:
        candidate = anchor / path
        if candidate.exists():
            return candidate
    return path


# ------------------------------------------------------------------------------ normalisation
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
            ContractError: the file is missing or its digest differs from the recorded one.
        """
        from espnet2.layers.global_mvn import GlobalMVN

        if self.stats_file is None or not Path(self.stats_file).is_file():
            raise ContractError(f"normalisation statistics {self.stats_file} not found; cannot convert features")
        if self.sha256 is not None and file_sha256(self.stats_file) != self.sha256:
            raise ContractError(
                f"normalisation statistics {self.stats_file} changed: sha256 differs from the recorded "
                f"{self.sha256[:12]}; the features were normalised with other statistics"
            )
        return GlobalMVN(self.stats_file, norm_means=self.norm_means, norm_vars=self.norm_vars)


# ------------------------------------------------------------------------------ contract
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
        from espnet_hifigan.features import LogMelSpectrogram

        signature = inspect.signature(LogMelSpectrogram.__init__)
        values = {n: p.default for n, p in signature.parameters.items() if n != "self"}
        extra = {"mel_scale", "stft_normalized", "normalize"}
        unknown = set(params) - set(values) - extra - {"contract_version", VOCODER_NORMALIZE_KEY}
        if unknown:
            raise ContractError(f"{source or 'feature settings'}: unknown fields {sorted(unknown)}")
        values.update({k: v for k, v in params.items() if k in values or k in extra})
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
            config = _load_mapping(config)
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
        """The features of an ESPnet TTS experiment (``feats_extract: fbank``).

        ``LogMelFbank`` conventions: ``Stft`` with reflect ``center`` padding, power floor 1e-10
        before the square root, mel floor 1e-10, ``log_base`` (default 10), Slaney mel bank
        (``htk: true`` gives the HTK scale).

        Args:
            config: The TTS ``config.yaml`` (path or mapping).
            normalized: Describe the normalised features (``norm/feats.scp``: normalised with
                the TTS's ``normalize_conf.stats_file`` if the TTS normalises) instead of the raw
                ones (``denorm/feats.scp``).
            base_dirs: Where to look for a relative stats file besides the current directory
                (default: the parents of the config file, i.e. the recipe directory).
            source: Description for messages.
        """
        from espnet2.tts.feats_extract.log_mel_fbank import LogMelFbank

        if not isinstance(config, Mapping):
            path = Path(config)
            source = source or str(path)
            base_dirs = tuple(base_dirs) or tuple(path.resolve().parents)
            config = _load_mapping(path)
        source = source or "ESPnet TTS config"
        kind = config.get("feats_extract")
        if kind != "fbank":
            raise ContractError(
                f"{source}: feats_extract is {kind!r}; only 'fbank' (LogMelFbank) TTS features can feed a mel vocoder"
            )
        signature = inspect.signature(LogMelFbank.__init__)
        conf = {n: p.default for n, p in signature.parameters.items() if n != "self"}
        given = config.get("feats_extract_conf") or {}
        unknown = set(given) - set(conf)
        if unknown:
            raise ContractError(f"{source}: unknown feats_extract_conf keys {sorted(unknown)}")
        conf.update(given)
        if not conf.get("onesided", True):
            raise ContractError(f"{source}: onesided=false STFT features are not mel features a vocoder can use")
        normalize = None
        if normalized and config.get("normalize") is not None:
            if config["normalize"] != "global_mvn":
                raise ContractError(f"{source}: normalize {config['normalize']!r} is not supported (global_mvn only)")
            norm_conf = config.get("normalize_conf") or {}
            if norm_conf.get("stats_file") is None:
                raise ContractError(f"{source}: normalize_conf.stats_file is not set")
            stats = resolve_relative(norm_conf["stats_file"], [Path(b) for b in base_dirs])
            normalize = Normalization.from_stats_file(
                stats, norm_conf.get("norm_means", True), norm_conf.get("norm_vars", True)
            )
        return cls(
            fs=conf["fs"],
            n_fft=conf["n_fft"],
            hop_length=conf["hop_length"],
            win_length=conf["win_length"],
            window=conf["window"],
            n_mels=conf["n_mels"],
            fmin=conf["fmin"],
            fmax=conf["fmax"],
            log_base=conf["log_base"],
            padding="center" if conf["center"] else "none",
            mel_scale="htk" if conf["htk"] else "slaney",
            stft_normalized=bool(conf["normalized"]),
            normalize=normalize,
            source=f"{source} ({'normalised' if normalize else 'raw'} features)",
            **ESPNET_FBANK_CONVENTIONS,
        )

    @classmethod
    def from_official_config(cls, config: Union[PathLike, Mapping[str, Any]], source: str = "") -> "FeatureContract":
        """The mel of an official jik876/hifi-gan ``config.json``."""
        if not isinstance(config, Mapping):
            source = source or str(config)
            config = _load_mapping(config)
        return cls(
            fs=config["sampling_rate"],
            n_fft=config["n_fft"],
            hop_length=config["hop_size"],
            win_length=config["win_size"],
            n_mels=config["num_mels"],
            fmin=config["fmin"],
            fmax=config["fmax"],
            source=source or "official config.json",
            **OFFICIAL_CONVENTIONS,
        )

    @classmethod
    def from_pwg_config(
        cls,
        config: Union[PathLike, Mapping[str, Any]],
        normalize: Optional[Normalization] = None,
        source: str = "",
    ) -> "FeatureContract":
        """The features of a ParallelWaveGAN ``config.yml``.

        A config exported by us carries the full contract under ``espnet_hifigan_feature_contract``
        and that is used; otherwise PWG's ``logmelfilterbank`` conventions apply (librosa
        ``|stft|`` with ``center=True``, mel floor 1e-10, ``log_base`` default 10).
        """
        if not isinstance(config, Mapping):
            source = source or str(config)
            config = _load_mapping(config)
        source = source or "ParallelWaveGAN config.yml"
        if PWG_CONTRACT_KEY in config:
            data = dict(config[PWG_CONTRACT_KEY])
            data.pop("normalize", None)
            data.pop("contract_version", None)
            return cls(**data, normalize=normalize, source=source)
        return cls(
            fs=config["sampling_rate"],
            n_fft=config["fft_size"],
            hop_length=config["hop_size"],
            win_length=config.get("win_length"),
            window=config.get("window", "hann"),
            n_mels=config["num_mels"],
            fmin=config.get("fmin"),
            fmax=config.get("fmax"),
            log_base=config.get("log_base", PWG_DEFAULT_LOG_BASE),
            normalize=normalize,
            source=source,
            **PWG_CONVENTIONS,
        )

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
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
                if PACKED_CONTRACT in names:
                    data = yaml.safe_load(zf.read(PACKED_CONTRACT))
                    return cls.from_dict(data, source=f"{path}:{PACKED_CONTRACT}")
                if PACKED_CONFIG in names:
                    return cls.from_train_config(yaml.safe_load(zf.read(PACKED_CONFIG)), source=f"{path}:{PACKED_CONFIG}")
            raise ContractError(f"{path} is a zip without {PACKED_CONTRACT} or {PACKED_CONFIG}")
        data = _load_mapping(path)
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
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

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
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

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
        if self.padding == "center":
            return num_samples // self.hop_length + 1
        if self.padding == "official":
            return num_samples // self.hop_length
        return max(0, (num_samples - self.n_fft) // self.hop_length + 1)

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


# ------------------------------------------------------------------------------ messages
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


# ------------------------------------------------------------------------------ reconciliation
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


def is_espnet_tts_config(data: Mapping[str, Any]) -> bool:
    """Whether a config mapping is an ESPnet TTS (or gan_tts) experiment's ``config.yaml``."""
    return "tts" in data and "feats_extract" in data


def load_contract_for_scp(contract_file: PathLike, feats_scp: PathLike) -> FeatureContract:
    """Read the contract of ``feats_scp`` from ``contract_file``.

    As :meth:`FeatureContract.load`, except that an ESPnet TTS ``config.yaml`` describes the
    features of a ``norm/feats.scp`` as normalised with the TTS statistics (``denorm/`` and
    anything else: raw).
    """
    path = Path(contract_file)
    if path.suffix in (".yaml", ".yml") and path.is_file() and not zipfile.is_zipfile(path):
        data = _load_mapping(path)
        if is_espnet_tts_config(data):
            normalized = Path(feats_scp).resolve().parent.name == ESPNET_NORM_DIR
            return FeatureContract.from_espnet_tts_config(path, normalized=normalized)
    return FeatureContract.load(path)


def discover_contract(feats_scp: PathLike) -> Optional[FeatureContract]:
    """Find the contract of a ``feats.scp`` from the files around it.

    Looks for, in order: ``feature_contract.yaml`` and ``feats_conf.yaml`` in the scp's
    directory; for ESPnet ``tts_inference`` output (``<tts_exp>/<decode>/<set>/{norm,denorm}/
    feats.scp``) the TTS experiment's ``config.yaml`` a few levels up (``norm``: normalised with
    the TTS statistics, ``denorm``: raw).

    Returns:
        The contract, or ``None`` when nothing describes the features.
    """
    scp_dir = Path(feats_scp).resolve().parent
    for name in (CONTRACT_FILE, FEATS_CONF_FILE):
        if (scp_dir / name).is_file():
            return FeatureContract.load(scp_dir / name)
    if scp_dir.name in (ESPNET_NORM_DIR, ESPNET_DENORM_DIR):
        for parent in list(scp_dir.parents)[:DISCOVERY_MAX_PARENTS]:
            config = parent / "config.yaml"
            if config.is_file() and is_espnet_tts_config(_load_mapping(config)):
                return load_contract_for_scp(config, feats_scp)
    return None


def pick_tts_feats(
    decode_set_dir: PathLike, tts_config: PathLike, target: FeatureContract
) -> Tuple[Path, FeatureContract, FeatureConversion]:
    """Choose the feats.scp of an ESPnet ``tts_inference`` output for a consumer of ``target``.

    ``tts_inference`` writes ``norm/feats.scp`` (the model's output: normalised with the TTS
    statistics if the TTS normalises, else raw) and, when it normalises, ``denorm/feats.scp``
    (raw). The scp whose contract equals ``target`` is preferred; otherwise one that differs only
    in normalisation, with the conversion.

    Args:
        decode_set_dir: ``<tts_exp>/<decode_dir>/<set>`` (or a teacher-forcing output dir).
        tts_config: The TTS experiment's ``config.yaml``.
        target: The contract the features must meet (a vocoder's: raw log-mel).

    Returns:
        The scp, its contract and the conversion to ``target``.

    Raises:
        ContractError: no scp found; ContractMismatch: the TTS features cannot meet ``target``.
    """
    decode_set_dir = Path(decode_set_dir)
    candidates = []
    for sub in (ESPNET_DENORM_DIR, ESPNET_NORM_DIR):
        scp = decode_set_dir / sub / "feats.scp"
        if scp.is_file():
            candidates.append((scp, load_contract_for_scp(tts_config, scp)))
    if not candidates:
        raise ContractError(
            f"{decode_set_dir} has neither {ESPNET_DENORM_DIR}/feats.scp nor {ESPNET_NORM_DIR}/feats.scp "
            "(is it an ESPnet tts_inference output directory?)"
        )
    for scp, contract in candidates:
        if not contract.compare(target):
            return scp, contract, FeatureConversion(contract, target)
    error: Optional[ContractError] = None
    for scp, contract in candidates:
        try:
            return scp, contract, reconcile(contract, target)
        except ContractError as e:
            error = error or e
    assert error is not None
    raise error


def load_target_contract(path: PathLike) -> FeatureContract:
    """The input contract of a vocoder given as an experiment directory or any contract file."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.yaml"
    return FeatureContract.load(path)


# ------------------------------------------------------------------------------ training hooks
def write_vocoder_contract(config: Mapping[str, Any], output_dir: PathLike) -> Path:
    """Record a vocoder experiment's contract as ``<output_dir>/feature_contract.yaml``.

    The input contract (raw log-mel of ``feats_extract_conf``) plus the normalisation the model
    applies (``normalize_conf.stats_file`` and its SHA-256). Meant to be called once per training
    run with the effective configuration (``vars(args)`` in ``VocoderTask``).

    Returns:
        The written path.
    """
    output_dir = Path(output_dir)
    contract = FeatureContract.from_train_config(config, source=str(output_dir / "config.yaml"))
    return contract.save(output_dir / CONTRACT_FILE, vocoder_normalize=vocoder_normalization(config))


def check_training_data(config: Mapping[str, Any]) -> List[str]:
    """Check the pre-extracted features a vocoder is trained on against its feature settings.

    For every ``feats`` entry of ``train_data_path_and_name_and_type`` and
    ``valid_data_path_and_name_and_type``, the contract next to its scp (``feature_contract.yaml``
    or ``feats_conf.yaml``, see :func:`discover_contract`) must equal the model's: raw log-mel
    made with ``feats_extract_conf``.

    Args:
        config: The training configuration (``vars(args)``).

    Returns:
        The scp files that carry no contract (unchecked; worth a warning).

    Raises:
        ContractMismatch: a data set's features differ from the model's settings.
    """
    target = FeatureContract.from_train_config(config, source="the training config's feats_extract_conf")
    unchecked = []
    for key in ("train_data_path_and_name_and_type", "valid_data_path_and_name_and_type"):
        for path, name, _ in config.get(key) or []:
            if name != "feats":
                continue
            contract = discover_contract(path)
            if contract is None:
                unchecked.append(str(path))
                continue
            diffs = contract.compare(target)
            if diffs:
                raise ContractMismatch(
                    diffs,
                    contract,
                    target,
                    hint=f"{path} was extracted with other settings; re-extract it or train with its settings.",
                    labels=("training data", "model"),
                )
    return unchecked
