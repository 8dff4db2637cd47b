"""Load a trained or packed vocoder and turn mels into audio.

>>> vocoder = Vocoder.from_pretrained("exp/hifigan/packed/model.zip")
>>> wav = vocoder(mel)            # mel: raw (de-normalised) log-mel (frames, n_mels)

A packed model is one zip archive (see :func:`pack_model`) with ``config.yaml``, ``model.pth``
(generator and normalisation only), ``feats_stats.npz`` and ``feature_contract.yaml``.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple, Union

import kaldiio
import numpy as np
import torch
import yaml

from espnet_hifigan.features import LogMelSpectrogram
from espnet_hifigan.generator import HiFiGANGenerator

PACK_CONFIG = "config.yaml"
PACK_MODEL = "model.pth"
PACK_STATS = "feats_stats.npz"
PACK_CONTRACT = "feature_contract.yaml"
# State-dict prefixes an inference-only model keeps.
INFERENCE_PREFIXES = ("generator.", "normalize.")

PathLike = Union[str, Path]


def file_sha256(path: PathLike) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_feats_scp(path: PathLike) -> Iterator[Tuple[str, np.ndarray]]:
    """Iterate ``(utt, feats)`` over an scp of Kaldi ark entries or ``.npy`` files.

    ESPnet's ``tts_inference`` writes npy scp files (one ``.npy`` per utterance); our recipe
    writes Kaldi ark/scp. Both are read here, line by line, in file order.

    Raises:
        ValueError: naming the scp line that is malformed or cannot be read.
    """
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.split(maxsplit=1)
            if len(parts) != 2:
                raise ValueError(f"{path}:{lineno}: expected '<utt> <path>', got {line!r}")
            utt, value = parts
            try:
                feats = np.load(value) if value.endswith(".npy") else kaldiio.load_mat(value)
            except Exception as e:  # noqa: BLE001 - re-raised with the utterance named
                raise ValueError(f"{path}:{lineno}: cannot read features of {utt} from {value}: {e}") from e
            yield utt, np.asarray(feats, dtype=np.float32)


def _load_yaml(path: PathLike) -> Dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


class Vocoder:
    """An inference-ready generator with its feature contract and normalisation.

    Args:
        config: The training ``config.yaml`` as a dict.
        state_dict: Model state dict (``generator.*`` and ``normalize.*`` keys are used).
        device: Torch device to run on.
    """

    def __init__(self, config: Dict[str, Any], state_dict: Dict[str, torch.Tensor], device: str = "cpu"):
        self.config = config
        self.device = torch.device(device)
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

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls, path: PathLike, model_file: Optional[PathLike] = None, device: str = "cpu"
    ) -> "Vocoder":
        """Load a packed ``.zip``, or a training ``config.yaml`` plus ``model_file``."""
        path = Path(path)
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                config = yaml.safe_load(zf.read(PACK_CONFIG))
                state = torch.load(io.BytesIO(zf.read(PACK_MODEL)), map_location="cpu")
            return cls(config, state, device)
        if model_file is None:
            raise ValueError(f"{path} is not a packed model: pass model_file with a config.yaml")
        config = _load_yaml(path)
        state = torch.load(model_file, map_location="cpu")
        return cls(config, state, device)

    @classmethod
    def from_official(cls, checkpoint: PathLike, config_json: PathLike, device: str = "cpu") -> "Vocoder":
        """Load an official jik876 ``g_XXXXXXXX`` checkpoint with its ``config.json``."""
        from espnet_hifigan.interop import load_official_generator

        generator, config = load_official_generator(checkpoint, config_json)
        state = {f"generator.{k}": v for k, v in generator.state_dict().items()}
        return cls(config, state, device)

    # ------------------------------------------------------------------ properties
    @property
    def fs(self) -> int:
        """Output sampling rate."""
        return self.feats_extract.fs

    @property
    def hop_length(self) -> int:
        """Samples per feature frame."""
        return self.feats_extract.hop_length

    def feature_contract(self) -> Dict[str, Any]:
        """Feature settings the vocoder expects (raw log-mel; it normalises internally)."""
        return dict(self.feats_extract.get_parameters(), normalized=False)

    # ------------------------------------------------------------------ synthesis
    def normalize(self, feats: torch.Tensor) -> torch.Tensor:
        """Apply the vocoder's own global MVN to raw features (frames, n_mels)."""
        if self.mean is not None:
            feats = feats - self.mean
        if self.std is not None:
            feats = feats / self.std
        return feats

    @torch.no_grad()
    def __call__(self, feats: Union[np.ndarray, torch.Tensor], dtype: torch.dtype = torch.float32) -> np.ndarray:
        """Synthesise a waveform.

        Args:
            feats: Raw log-mel (frames, n_mels).
            dtype: ``torch.bfloat16`` runs the generator under autocast (GPU fast path).

        Returns:
            Waveform (frames * hop_length,) float32 in [-1, 1].
        """
        feats = torch.as_tensor(feats, dtype=torch.float32, device=self.device)
        if feats.dim() != 2 or feats.size(1) != self.feats_extract.n_mels:
            raise ValueError(
                f"expected features of shape (frames, {self.feats_extract.n_mels}), got {tuple(feats.shape)}"
            )
        feats = self.normalize(feats)
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype != torch.float32):
            wav = self.generator.inference(feats)
        return wav.float().cpu().numpy()

    def features(self, wav: np.ndarray) -> np.ndarray:
        """Raw log-mel (frames, n_mels) of a mono waveform at :attr:`fs`."""
        x = torch.as_tensor(wav, dtype=torch.float32, device=self.device)
        feats, _ = self.feats_extract(x)
        return feats[0].cpu().numpy()


def pack_model(train_config: PathLike, model_file: PathLike, outpath: PathLike) -> Path:
    """Write one zip with everything inference needs on another machine.

    Args:
        train_config: The experiment's ``config.yaml``.
        model_file: A checkpoint (``*.pth`` model state dict).
        outpath: Destination ``.zip``.

    Returns:
        The written path.
    """
    config = _load_yaml(train_config)
    state = torch.load(model_file, map_location="cpu")
    state = {k: v for k, v in state.items() if k.startswith(INFERENCE_PREFIXES)}
    contract: Dict[str, Any] = dict(LogMelSpectrogram(**config["feats_extract_conf"]).get_parameters())
    stats_bytes = None
    if config.get("normalize") is not None:
        stats_file = Path(config["normalize_conf"]["stats_file"])
        if not stats_file.is_file():
            raise FileNotFoundError(f"normalisation stats {stats_file} named in {train_config} do not exist")
        stats_bytes = stats_file.read_bytes()
        contract["normalize"] = dict(stats_file=PACK_STATS, sha256=hashlib.sha256(stats_bytes).hexdigest())
        config["normalize_conf"] = dict(config["normalize_conf"], stats_file=PACK_STATS)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    outpath = Path(outpath)
    outpath.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=outpath.parent, suffix=".zip.tmp", delete=False) as tmp:
        tmp_path = Path(tmp.name)
    try:
        with zipfile.ZipFile(tmp_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(PACK_CONFIG, yaml.safe_dump(config, sort_keys=False))
            zf.writestr(PACK_MODEL, buffer.getvalue())
            zf.writestr(PACK_CONTRACT, yaml.safe_dump(contract, sort_keys=False))
            if stats_bytes is not None:
                zf.writestr(PACK_STATS, stats_bytes)
        tmp_path.replace(outpath)
    finally:
        tmp_path.unlink(missing_ok=True)
    return outpath
