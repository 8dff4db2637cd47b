"""Load a trained, packed or imported vocoder and turn mels into audio, contract enforced.

>>> vocoder = Vocoder.from_pretrained("exp/hifigan/packed/model.zip")
>>> wav = vocoder(mel)                      # mel: raw (de-normalised) log-mel (frames, n_mels)
>>> wav = vocoder(norm_mel, contract=FeatureContract.from_espnet_tts_config(
...     "exp/tts/config.yaml", normalized=True))   # TTS-normalised: de-normalised first
>>> for utt, wav in vocoder.decode_scp("exp/tts/decode/test/norm/feats.scp"):  # contract found
...     ...

:meth:`Vocoder.from_pretrained` reads a packed ``.zip``, an experiment directory, a training
``config.yaml`` plus checkpoint, a ParallelWaveGAN ``checkpoint-*.pkl``, an official
``g_XXXXXXXX`` (with ``config.json`` next to it) or an ESPnet ``gan_tts`` ``model.pth`` (with its
``config.yaml``).

A packed model is one zip archive (see :func:`pack_vocoder`) with ``config.yaml``, ``model.pth``
(generator and normalisation only), ``feats_stats.npz`` and ``feature_contract.yaml``.
"""

from __future__ import annotations

import hashlib
import io
import logging
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional, Sequence, Set, Tuple, Union

import kaldiio
import numpy as np
import torch
import yaml

from espnet_hifigan.contract import (
    VOCODER_NORMALIZE_KEY,
    FeatureContract,
    FeatureConversion,
    Normalization,
    discover_contract,
    file_sha256,
    reconcile,
    vocoder_normalization,
)
from espnet_hifigan.features import LogMelSpectrogram
from espnet_hifigan.generator import HiFiGANGenerator

PACK_CONFIG = "config.yaml"
PACK_MODEL = "model.pth"
PACK_STATS = "feats_stats.npz"
PACK_CONTRACT = "feature_contract.yaml"
# State-dict prefixes an inference-only model keeps.
INFERENCE_PREFIXES = ("generator.", "normalize.")
# Checkpoint an experiment directory is decoded with when none is named.
LATEST_CHECKPOINT = "latest.pth"

PathLike = Union[str, Path]
__all__ = ["Vocoder", "read_feats_scp", "pack_model", "pack_vocoder", "file_sha256"]


def _resolve_scp_path(value: str, scp_dirs: Sequence[Path]) -> str:
    """Resolve a relative ``.npy`` path or ``file.ark:offset`` of an scp line."""
    path_part, sep, offset = value.rpartition(":") if not value.endswith(".npy") else (value, "", "")
    if not sep or not offset.isdigit():
        path_part, sep, offset = value, "", ""
    path = Path(path_part)
    if path.is_absolute() or path.exists():
        return value
    # ESPnet writes paths relative to the recipe directory, an ancestor of the scp.
    for scp_dir in scp_dirs:
        for parent in [scp_dir, *scp_dir.parents]:
            if (parent / path).exists():
                return f"{parent / path}{sep}{offset}"
    return value


def read_feats_scp(
    path: PathLike, keys: Optional[Set[str]] = None, origin: Optional[PathLike] = None
) -> Iterator[Tuple[str, np.ndarray]]:
    """Iterate ``(utt, feats)`` over an scp of Kaldi ark entries or ``.npy`` files.

    ESPnet's ``tts_inference`` writes npy scp files (one ``.npy`` per utterance) with paths
    relative to the recipe directory; our recipe writes Kaldi ark/scp. Both are read here, line
    by line, in file order; relative paths are found from the current directory or the scp's
    parent directories (and ``origin``'s, for a split copy of an scp).

    Args:
        path: The scp file.
        keys: Only these utterances (``None``: all).
        origin: The scp ``path`` was split from, if any.

    Yields:
        Utterance id and float32 features (frames, dims).

    Raises:
        ValueError: naming the scp line that is malformed or cannot be read.
    """
    scp_dirs = [Path(path).resolve().parent] + ([Path(origin).resolve().parent] if origin is not None else [])
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.split(maxsplit=1)
            if len(parts) != 2:
                raise ValueError(f"{path}:{lineno}: expected '<utt> <path>', got {line!r}")
            utt, value = parts
            if keys is not None and utt not in keys:
                continue
            value = _resolve_scp_path(value, scp_dirs)
            try:
                feats = np.load(value) if value.endswith(".npy") else kaldiio.load_mat(value)
            except Exception as e:  # noqa: BLE001 - re-raised with the utterance named
                raise ValueError(f"{path}:{lineno}: cannot read features of {utt} from {value}: {e}") from e
            yield utt, np.asarray(feats, dtype=np.float32)


def _load_yaml(path: PathLike) -> Dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def _best_checkpoint(exp_dir: Path, config: Mapping[str, Any]) -> Path:
    """``<phase>.<key>.best.pth`` of the first best_model_criterion, else ``latest.pth``."""
    criteria = config.get("best_model_criterion") or []
    names = [f"{criteria[0][0]}.{criteria[0][1]}.best.pth"] if criteria else []
    for name in names + [LATEST_CHECKPOINT]:
        if (exp_dir / name).is_file():
            return exp_dir / name
    raise FileNotFoundError(f"{exp_dir} has none of the checkpoints {names + [LATEST_CHECKPOINT]}")


def _is_packed(path: Path) -> bool:
    """A packed model: a zip with our config inside (torch checkpoints are zips too)."""
    if path.suffix == ".pkl" or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return PACK_CONFIG in zf.namelist()


class Vocoder:
    """An inference-ready generator with its feature contract and normalisation.

    Args:
        config: Our training ``config.yaml`` as a dict (``feats_extract_conf``,
            ``generator_conf``, ``normalize``/``normalize_conf``).
        state_dict: Model state dict (``generator.*`` and ``normalize.*`` keys are used).
        device: Torch device to run on.
        source: Where the model came from (messages and the contract's ``source``).
        normalization: The normalisation the vocoder applies (default: from ``config``).
    """

    def __init__(
        self,
        config: Dict[str, Any],
        state_dict: Dict[str, torch.Tensor],
        device: str = "cpu",
        source: str = "",
        normalization: Optional[Normalization] = None,
    ):
        self.config = config
        self.device = torch.device(device)
        self.source = source
        self.feats_extract = LogMelSpectrogram(**config["feats_extract_conf"])
        self.generator = HiFiGANGenerator(in_channels=self.feats_extract.n_mels, **config["generator_conf"])
        gen_state = {k[len("generator.") :]: v for k, v in state_dict.items() if k.startswith("generator.")}
        self.generator.load_state_dict(gen_state)
        self.generator.remove_weight_norm()
        self.generator.eval().to(self.device)
        self.feats_extract.to(self.device)
        self.mean: Optional[torch.Tensor] = None
        self.std: Optional[torch.Tensor] = None
        if config.get("normalize") is not None:
            norm_conf = config.get("normalize_conf") or {}
            if norm_conf.get("norm_means", True):
                self.mean = state_dict["normalize.mean"].float().to(self.device)
            if norm_conf.get("norm_vars", True):
                self.std = state_dict["normalize.std"].float().to(self.device)
        self.contract = FeatureContract.from_logmel(
            self.feats_extract.get_parameters(), source=f"vocoder {source}".strip()
        )
        self.normalization = normalization if normalization is not None else vocoder_normalization(config)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls, path: PathLike, model_file: Optional[PathLike] = None, device: str = "cpu"
    ) -> "Vocoder":
        """Load a vocoder from any supported file (see the module docstring).

        Args:
            path: A packed ``.zip``; an experiment directory (with ``config.yaml``); a training
                ``config.yaml`` (then ``model_file`` is the checkpoint); a ParallelWaveGAN
                ``*.pkl``; an official ``g_*`` checkpoint (``config.json`` next to it); an ESPnet
                ``gan_tts`` ``config.yaml`` (then ``model_file`` is its ``model.pth``).
            model_file: Checkpoint for a config path, or a checkpoint name in an experiment dir.
            device: Torch device.
        """
        path = Path(path)
        if path.is_dir():
            config = _load_yaml(path / "config.yaml")
            ckpt = path / model_file if model_file is not None else _best_checkpoint(path, config)
            return cls(config, torch.load(ckpt, map_location="cpu"), device, source=str(ckpt))
        if _is_packed(path):
            with zipfile.ZipFile(path) as zf:
                config = yaml.safe_load(zf.read(PACK_CONFIG))
                state = torch.load(io.BytesIO(zf.read(PACK_MODEL)), map_location="cpu")
                contract = yaml.safe_load(zf.read(PACK_CONTRACT)) if PACK_CONTRACT in zf.namelist() else {}
            norm = contract.get(VOCODER_NORMALIZE_KEY)
            return cls(config, state, device, source=str(path), normalization=None if norm is None else Normalization.from_dict(norm))
        if path.suffix == ".pkl":
            return cls.from_parallel_wavegan(path, model_file, device)
        if path.suffix in (".yaml", ".yml"):
            config = _load_yaml(path)
            if model_file is None:
                raise ValueError(f"{path} is a config: pass model_file (the checkpoint) with it")
            if "tts" in config:
                return cls.from_espnet(model_file, path, device)
            return cls(config, torch.load(model_file, map_location="cpu"), device, source=str(model_file))
        if (path.parent / "config.json").is_file():
            return cls.from_official(path, path.parent / "config.json", device)
        raise ValueError(
            f"cannot tell what {path} is: expected a packed .zip, an experiment directory, a config.yaml with "
            "model_file, a ParallelWaveGAN .pkl, or an official g_* checkpoint with config.json next to it"
        )

    @classmethod
    def from_official(cls, checkpoint: PathLike, config_json: PathLike, device: str = "cpu") -> "Vocoder":
        """Load an official jik876 ``g_XXXXXXXX`` checkpoint with its ``config.json``."""
        from espnet_hifigan.interop import load_official_generator

        generator, config = load_official_generator(checkpoint, config_json)
        state = {f"generator.{k}": v for k, v in generator.state_dict().items()}
        return cls(config, state, device, source=str(checkpoint))

    @classmethod
    def from_parallel_wavegan(
        cls, checkpoint: PathLike, config_file: Optional[PathLike] = None, device: str = "cpu"
    ) -> "Vocoder":
        """Load a ParallelWaveGAN ``HiFiGANGenerator`` checkpoint (``config.yml``, stats next to it)."""
        from espnet_hifigan.interop import load_parallel_wavegan

        config, state, normalization = load_parallel_wavegan(checkpoint, config_file)
        return cls(config, state, device, source=str(checkpoint), normalization=normalization)

    @classmethod
    def from_espnet(cls, model_file: PathLike, config_file: PathLike, device: str = "cpu") -> "Vocoder":
        """Load the HiFi-GAN generator of an ESPnet ``gan_tts`` model (e.g. ``joint_text2wav``)."""
        from espnet_hifigan.interop import load_espnet_gan_tts

        config, state, normalization = load_espnet_gan_tts(model_file, config_file)
        return cls(config, state, device, source=str(model_file), normalization=normalization)

    # ------------------------------------------------------------------ properties
    @property
    def fs(self) -> int:
        """Output sampling rate."""
        return self.feats_extract.fs

    @property
    def hop_length(self) -> int:
        """Samples per feature frame."""
        return self.feats_extract.hop_length

    @property
    def n_mels(self) -> int:
        """Mel bins of the input."""
        return self.feats_extract.n_mels

    def feature_contract(self) -> FeatureContract:
        """Features the vocoder expects: raw log-mel (it applies :attr:`normalization` itself)."""
        return self.contract

    def conversion_from(self, contract: FeatureContract) -> FeatureConversion:
        """How features of ``contract`` become this vocoder's input.

        Raises:
            ContractMismatch: the features differ in a field other than normalisation.
        """
        return reconcile(
            contract,
            self.contract,
            hint="These features cannot be decoded by this vocoder: extract them (or train the vocoder) "
            "with the same settings.",
        )

    # ------------------------------------------------------------------ synthesis
    def normalize(self, feats: torch.Tensor) -> torch.Tensor:
        """Apply the vocoder's own global MVN to raw features (frames, n_mels)."""
        if self.mean is not None:
            feats = feats - self.mean
        if self.std is not None:
            feats = feats / self.std
        return feats

    @torch.no_grad()
    def __call__(
        self,
        feats: Union[np.ndarray, torch.Tensor],
        dtype: torch.dtype = torch.float32,
        contract: Optional[FeatureContract] = None,
    ) -> np.ndarray:
        """Synthesise a waveform.

        Args:
            feats: Log-mel (frames, n_mels): raw, or as described by ``contract``.
            dtype: ``torch.bfloat16`` runs the generator under autocast (GPU fast path).
            contract: The features' contract; checked against the vocoder's (and the features
                de-normalised if that is the only difference). ``None``: raw features assumed.

        Returns:
            Waveform (frames * hop_length,) float32 in [-1, 1].

        Raises:
            ContractMismatch: ``contract`` differs from the vocoder's in a non-normalisation field.
        """
        if contract is not None:
            if isinstance(feats, torch.Tensor):
                feats = feats.detach().cpu().numpy()
            feats = self.conversion_from(contract)(feats)
        return self._synthesise(feats, dtype)

    def _synthesise(self, feats: Union[np.ndarray, torch.Tensor], dtype: torch.dtype) -> np.ndarray:
        feats = torch.as_tensor(feats, dtype=torch.float32, device=self.device)
        if feats.dim() != 2 or feats.size(1) != self.n_mels:
            raise ValueError(f"expected features of shape (frames, {self.n_mels}), got {tuple(feats.shape)}")
        feats = self.normalize(feats)
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype != torch.float32):
            wav = self.generator.inference(feats)
        return wav.float().cpu().numpy()

    def resolve_contract(
        self, feats_scp: PathLike, contract: Optional[FeatureContract] = None
    ) -> Tuple[Optional[FeatureContract], FeatureConversion]:
        """The contract of ``feats_scp`` (given, or discovered next to it) and its conversion.

        Without any contract the features are assumed raw, with a warning.

        Raises:
            ContractMismatch: the features cannot be decoded by this vocoder.
        """
        if contract is None:
            contract = discover_contract(feats_scp)
            if contract is None:
                logging.warning(
                    f"no feature contract for {feats_scp} (no feature_contract.yaml or feats_conf.yaml next to "
                    "it, not an ESPnet TTS decode directory): assuming raw log-mel with the vocoder's settings"
                )
        conversion = self.conversion_from(contract if contract is not None else self.contract)
        logging.info(conversion.describe())
        return contract, conversion

    def decode_scp(
        self,
        feats_scp: PathLike,
        contract: Optional[FeatureContract] = None,
        keys: Optional[Set[str]] = None,
        dtype: torch.dtype = torch.float32,
    ) -> Iterator[Tuple[str, np.ndarray]]:
        """Synthesise every utterance of a feats.scp (Kaldi ark or ESPnet npy).

        The contract is checked before the first utterance is read (see :meth:`resolve_contract`).

        Yields:
            Utterance id and waveform (frames * hop_length,).
        """
        _, conversion = self.resolve_contract(feats_scp, contract)
        for utt, feats in read_feats_scp(feats_scp, keys):
            if feats.ndim != 2 or feats.shape[1] != self.n_mels:
                raise ValueError(f"{utt}: features have shape {feats.shape}; the vocoder expects (frames, {self.n_mels})")
            yield utt, self._synthesise(conversion(feats), dtype)

    def features(self, wav: np.ndarray) -> np.ndarray:
        """Raw log-mel (frames, n_mels) of a mono waveform at :attr:`fs`."""
        x = torch.as_tensor(wav, dtype=torch.float32, device=self.device)
        feats, _ = self.feats_extract(x)
        return feats[0].cpu().numpy()


# ---------------------------------------------------------------------- packing
def _stats_npz_bytes(mean: np.ndarray, std: np.ndarray) -> bytes:
    """ESPnet ``feats_stats.npz`` (count/sum/sum_square) reproducing ``mean`` and ``std``."""
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    buffer = io.BytesIO()
    np.savez(buffer, count=np.array(1.0), sum=mean, sum_square=std**2 + mean**2)
    return buffer.getvalue()


def pack_vocoder(
    config: Dict[str, Any],
    state: Mapping[str, torch.Tensor],
    outpath: PathLike,
    stats_bytes: Optional[bytes] = None,
) -> Path:
    """Write one zip with everything inference needs on another machine (atomically).

    Args:
        config: Our config (``feats_extract_conf``, ``generator_conf``, ``normalize*``).
        state: State dict; only ``generator.*`` and ``normalize.*`` entries are kept.
        outpath: Destination ``.zip``.
        stats_bytes: Content of the normalisation statistics (``feats_stats.npz``); made from the
            ``normalize.mean``/``normalize.std`` buffers when the config normalises and none is given.

    Returns:
        The written path.
    """
    config = dict(config)
    state = {k: v for k, v in state.items() if k.startswith(INFERENCE_PREFIXES)}
    contract = FeatureContract.from_train_config(config, source=str(outpath))
    normalization = None
    if config.get("normalize") is not None:
        if stats_bytes is None:
            stats_bytes = _stats_npz_bytes(state["normalize.mean"].numpy(), state["normalize.std"].numpy())
        norm_conf = dict(config.get("normalize_conf") or {}, stats_file=PACK_STATS)
        config["normalize_conf"] = norm_conf
        normalization = Normalization(
            stats_file=PACK_STATS,
            sha256=hashlib.sha256(stats_bytes).hexdigest(),
            norm_means=norm_conf.get("norm_means", True),
            norm_vars=norm_conf.get("norm_vars", True),
        )
    buffer = io.BytesIO()
    torch.save(state, buffer)
    outpath = Path(outpath)
    outpath.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=outpath.parent) as tmp_dir:
        contract_path = contract.save(Path(tmp_dir) / PACK_CONTRACT, vocoder_normalize=normalization)
        tmp_zip = Path(tmp_dir) / "model.zip"
        with zipfile.ZipFile(tmp_zip, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(PACK_CONFIG, yaml.safe_dump(config, sort_keys=False))
            zf.writestr(PACK_MODEL, buffer.getvalue())
            zf.write(contract_path, PACK_CONTRACT)
            if stats_bytes is not None:
                zf.writestr(PACK_STATS, stats_bytes)
        tmp_zip.replace(outpath)
    return outpath


def pack_model(train_config: PathLike, model_file: PathLike, outpath: PathLike) -> Path:
    """Pack a trained experiment's checkpoint (see :func:`pack_vocoder`).

    Args:
        train_config: The experiment's ``config.yaml``.
        model_file: A checkpoint (``*.pth`` model state dict).
        outpath: Destination ``.zip``.

    Returns:
        The written path.
    """
    config = _load_yaml(train_config)
    state = torch.load(model_file, map_location="cpu")
    stats_bytes = None
    if config.get("normalize") is not None:
        stats_file = Path(config["normalize_conf"]["stats_file"])
        if not stats_file.is_file():
            raise FileNotFoundError(f"normalisation stats {stats_file} named in {train_config} do not exist")
        stats_bytes = stats_file.read_bytes()
    return pack_vocoder(config, state, outpath, stats_bytes)


def pack_loaded_vocoder(vocoder: Vocoder, outpath: PathLike) -> Path:
    """Pack a loaded (e.g. imported) vocoder: weight norm folded, normalisation kept.

    Args:
        vocoder: Any :class:`Vocoder` (from a checkpoint of ours, official, ParallelWaveGAN, ESPnet).
        outpath: Destination ``.zip`` (loadable by :meth:`Vocoder.from_pretrained` and
            ``voc_inference --model_file``).
    """
    config = dict(vocoder.config)
    config["generator_conf"] = dict(config["generator_conf"], use_weight_norm=False)
    state: Dict[str, torch.Tensor] = {f"generator.{k}": v.cpu() for k, v in vocoder.generator.state_dict().items()}
    if config.get("normalize") is not None:
        n_mels = vocoder.n_mels
        state["normalize.mean"] = vocoder.mean.cpu() if vocoder.mean is not None else torch.zeros(n_mels)
        state["normalize.std"] = vocoder.std.cpu() if vocoder.std is not None else torch.ones(n_mels)
    return pack_vocoder(config, state, outpath)
