"""Load a trained, packed or imported vocoder and turn mels into audio, contract enforced.

>>> vocoder = Vocoder.from_pretrained("exp/hifigan/packed/model.zip")
>>> wav = vocoder(mel)                      # mel: raw (de-normalised) log-mel (frames, n_mels)
>>> wav = vocoder(norm_mel, contract=FeatureContract.from_espnet_tts_config(
...     "exp/tts/config.yaml", normalized=True))   # TTS-normalised: de-normalised first
>>> for utt, wav in vocoder.decode_scp("exp/tts/decode/test/norm/feats.scp"):  # contract found
...     ...

:meth:`Vocoder.from_pretrained` reads a packed ``.zip`` (:mod:`espnet_hifigan.formats.packing`), an
experiment directory, a training ``config.yaml`` plus checkpoint, or a foreign checkpoint
(:mod:`espnet_hifigan.formats`): a ParallelWaveGAN ``checkpoint-*.pkl``, an official
``g_XXXXXXXX`` (with ``config.json`` next to it) or an ESPnet ``gan_tts`` ``model.pth`` (with its
``config.yaml``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple, Union

import numpy as np
import torch

from espnet_hifigan.contract import ContractError, FeatureContract, FeatureConversion, Normalization
from espnet_hifigan.contract import discover_contract, load_mapping, reconcile, vocoder_normalization
from espnet_hifigan.core.fileio import PathLike
from espnet_hifigan.core.scp import read_feats_scp
from espnet_hifigan.formats.checkpoint_origin import check_checkpoint_origin
from espnet_hifigan.formats.packing import is_packed, read_packed
from espnet_hifigan.formats.weights import describe_content, load_generator_state, load_state_dict
from espnet_hifigan.inference.choose_checkpoint import find_checkpoint
from espnet_hifigan.inference.engine import FastGenerator
from espnet_hifigan.inference.input_checks import feature_problem, torch_ready
from espnet_hifigan.inference.streaming import LONG_FRAMES, generate_in_chunks, receptive_field
from espnet_hifigan.nets.features import LogMelSpectrogram
from espnet_hifigan.nets.generator import HiFiGANGenerator
from espnet_hifigan.nets.mvn import FeatureNorm

__all__ = ["Vocoder"]


class Vocoder:
    """An inference-ready generator with its feature contract and normalisation.

    Args:
        config: Our training ``config.yaml`` as a dict (``feats_extract_conf``,
            ``generator_conf``, ``normalize``/``normalize_conf``).
        state_dict: Model state dict (``generator.*`` and ``normalize.*`` keys are used).
        device: Torch device to run on.
        source: Where the model came from (messages and the contract's ``source``).
        normalization: The normalisation the vocoder applies (default: from ``config``).
        engine: What synthesises: ``"fast"`` (default), :class:`~espnet_hifigan.inference.engine.
            FastGenerator`, the same function laid out for speed (channels-last, polyphase
            upsamplers; equal to the reference within float rounding); ``"reference"``: the
            :class:`HiFiGANGenerator` module itself (:attr:`generator`, whose state dict is the
            model's either way).
        compile: ``torch.compile`` the engine (dynamic time axis; first call compiles; GPU); a
            string is the ``torch.compile`` mode (``"reduce-overhead"``: CUDA graphs, one recorded
            per input shape).
        fft: The fast engine computes its wide layers by FFT in fp32 on the CPU (~1.05x faster
            V1 synthesis, ~520 MiB more memory for V1; none for V2/V3); ``False``: all direct.
            Ignored on other devices, where every layer is direct and no spectra are built.
        long_frames: Utterances longer than this are synthesised ``long_frames`` frames at a time: the
            same audio in bounded memory (:func:`~espnet_hifigan.inference.streaming.generate_in_chunks`;
            default :data:`~espnet_hifigan.inference.streaming.LONG_FRAMES`); 0: every utterance whole.
    """

    ENGINES = ("fast", "reference")

    def __init__(
        self,
        config: Dict[str, Any],
        state_dict: Dict[str, torch.Tensor],
        device: str = "cpu",
        source: str = "",
        normalization: Optional[Normalization] = None,
        engine: str = "fast",
        compile: Union[bool, str] = False,
        fft: bool = True,
        long_frames: int = LONG_FRAMES,
    ):
        if engine not in self.ENGINES:
            raise ValueError(f"engine must be one of {self.ENGINES}, got {engine!r}")
        self.config = config
        self.device = torch.device(device)
        self.source = source
        self.feats_extract = LogMelSpectrogram(**config["feats_extract_conf"])
        self.generator = HiFiGANGenerator(in_channels=self.feats_extract.n_mels, **config["generator_conf"])
        gen_state = {k[len("generator.") :]: v for k, v in state_dict.items() if k.startswith("generator.")}
        load_generator_state(self.generator, gen_state, source)
        self.generator.remove_weight_norm()
        self.generator.eval().to(self.device)
        self.engine_name, self.long_frames = engine, long_frames
        # The FFT layers run only in fp32 on the CPU: their spectra (~520 MiB for V1) are built only there.
        fft = fft and self.device.type == "cpu"
        self.engine: torch.nn.Module = FastGenerator(self.generator, fft=fft) if engine == "fast" else self.generator
        if compile:
            mode = compile if isinstance(compile, str) else None
            self.engine = torch.compile(self.engine, dynamic=True, mode=mode)
        self.feats_extract.to(self.device)
        # The vocoder's own normalisation: the model's GlobalMVN buffers (applied as GlobalMVN does).
        self.normalizer: Optional[FeatureNorm] = None
        if config.get("normalize") is not None:
            norm_conf = config.get("normalize_conf") or {}
            n_mels = self.feats_extract.n_mels
            self.normalizer = FeatureNorm(
                state_dict.get("normalize.mean", torch.zeros(n_mels)),
                state_dict.get("normalize.std", torch.ones(n_mels)),
                norm_means=norm_conf.get("norm_means", True),
                norm_vars=norm_conf.get("norm_vars", True),
            ).to(self.device)
        self.contract = FeatureContract.from_logmel(
            self.feats_extract.get_parameters(), source=f"vocoder {source}".strip()
        )
        self.normalization = normalization if normalization is not None else vocoder_normalization(config)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls, path: PathLike, model_file: Optional[PathLike] = None, device: str = "cpu", **options: Any
    ) -> "Vocoder":
        """Load a vocoder from any supported file (see the module docstring).

        Args:
            path: A packed ``.zip``; an experiment directory (with ``config.yaml``); a training
                ``config.yaml`` (then ``model_file`` is the checkpoint); a ParallelWaveGAN
                ``*.pkl``; an official ``g_*`` checkpoint (``config.json`` next to it); an ESPnet
                ``gan_tts`` ``config.yaml`` (then ``model_file`` is its ``model.pth``).
            model_file: Checkpoint for a config path, or a checkpoint name in an experiment dir.
            device: Torch device.
            options: ``engine`` / ``compile`` (see the class).
        """
        path = Path(path)
        if path.is_dir():
            config = load_mapping(path / "config.yaml")
            ckpt = path / model_file if model_file is not None else find_checkpoint(path, config)
            return cls._from_checkpoint(config, path / "config.yaml", ckpt, device, **options)
        if is_packed(path):
            config, state, normalization = read_packed(path)
            return cls(config, state, device, source=str(path), normalization=normalization, **options)
        if path.suffix == ".pkl":
            return cls.from_parallel_wavegan(path, model_file, device, **options)
        if path.suffix in (".yaml", ".yml"):
            config = load_mapping(path)
            if model_file is None:
                raise ValueError(f"{path} is a config: pass model_file (the checkpoint) with it")
            if "tts" in config:
                return cls.from_espnet(model_file, path, device, **options)
            return cls._from_checkpoint(config, path, model_file, device, **options)
        if (path.parent / "config.json").is_file():
            return cls.from_official(path, path.parent / "config.json", device, **options)
        if not path.exists():
            raise FileNotFoundError(f"model {path} does not exist")
        with open(path, "rb") as f:
            head = f.read(64)
        torch_file = head.startswith((b"PK", b"\x80"))
        what = describe_content(head) or ("a PyTorch file without its config" if torch_file else "in no format we know")
        raise ValueError(
            f"{path} is {what}, not a model on its own: pass a checkpoint with its config.yaml (--train_config), "
            "a packed .zip, an experiment directory, a ParallelWaveGAN .pkl, or an official g_* checkpoint with "
            "config.json next to it"
        )

    @classmethod
    def _from_checkpoint(
        cls, config: Dict[str, Any], config_file: Path, checkpoint: PathLike, device: str, **options: Any
    ) -> "Vocoder":
        """One of our checkpoints with its experiment's ``config.yaml``, refused when it is another's.

        Raises:
            ModelFileError: the weights do not fit the generator the config describes.
            ContractError: the checkpoint comes from an experiment with other features or
                normalisation statistics (:func:`check_checkpoint_origin`: a table of the fields).
        """
        state = load_state_dict(checkpoint)
        vocoder = cls(config, state, device, source=str(checkpoint), **options)
        check_checkpoint_origin(config, state, checkpoint, config_file)
        return vocoder

    @classmethod
    def from_official(
        cls, checkpoint: PathLike, config_json: PathLike, device: str = "cpu", **options: Any
    ) -> "Vocoder":
        """Load an official jik876 ``g_XXXXXXXX`` checkpoint with its ``config.json``."""
        from espnet_hifigan.formats.official import load_official_generator

        generator, config = load_official_generator(checkpoint, config_json)
        state = {f"generator.{k}": v for k, v in generator.state_dict().items()}
        return cls(config, state, device, source=str(checkpoint), **options)

    @classmethod
    def from_parallel_wavegan(
        cls, checkpoint: PathLike, config_file: Optional[PathLike] = None, device: str = "cpu", **options: Any
    ) -> "Vocoder":
        """Load a ParallelWaveGAN ``HiFiGANGenerator`` checkpoint (``config.yml``, stats next to it)."""
        from espnet_hifigan.formats.pwg import load_parallel_wavegan

        config, state, normalization = load_parallel_wavegan(checkpoint, config_file)
        return cls(config, state, device, source=str(checkpoint), normalization=normalization, **options)

    @classmethod
    def from_espnet(
        cls, model_file: PathLike, config_file: PathLike, device: str = "cpu", **options: Any
    ) -> "Vocoder":
        """Load the HiFi-GAN generator of an ESPnet ``gan_tts`` model (e.g. ``joint_text2wav``)."""
        from espnet_hifigan.formats.espnet import load_espnet_gan_tts

        config, state, normalization = load_espnet_gan_tts(model_file, config_file)
        return cls(config, state, device, source=str(model_file), normalization=normalization, **options)

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

    @property
    def mean(self) -> Optional[torch.Tensor]:
        """Mean the vocoder subtracts from its input (n_mels,), or ``None``."""
        return self.normalizer.mean.float() if self.normalizer is not None and self.normalizer.norm_means else None

    @property
    def std(self) -> Optional[torch.Tensor]:
        """Standard deviation the vocoder divides its input by (n_mels,), or ``None``."""
        return self.normalizer.std.float() if self.normalizer is not None and self.normalizer.norm_vars else None

    # ------------------------------------------------------------------ synthesis
    def normalize(self, feats: torch.Tensor) -> torch.Tensor:
        """Apply the vocoder's own global MVN (as ESPnet's ``GlobalMVN``) to raw features (frames, n_mels)."""
        return feats if self.normalizer is None else self.normalizer(feats)

    @torch.inference_mode()
    def __call__(
        self,
        feats: Union[np.ndarray, torch.Tensor],
        dtype: torch.dtype = torch.float32,
        contract: Optional[FeatureContract] = None,
    ) -> np.ndarray:
        """Synthesise a waveform.

        Args:
            feats: Log-mel (frames, n_mels): raw, or as described by ``contract``.
            dtype: ``torch.bfloat16`` / ``torch.float16`` run the engine under autocast (GPU fast
                paths; see :func:`espnet_hifigan.inference.batching.resolve_dtype` for the fp32 fallback).
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

    def _checked(self, feats: Union[np.ndarray, torch.Tensor], name: str = "") -> torch.Tensor:
        """Features as a float32 tensor on the device, normalised; shape and values checked."""
        feats = torch.as_tensor(torch_ready(feats), dtype=torch.float32, device=self.device)
        where = f"{name}: " if name else ""
        if feats.dim() != 2 or feats.size(1) != self.n_mels:
            raise ValueError(f"{where}expected features of shape (frames, {self.n_mels}), got {tuple(feats.shape)}")
        if feats.size(0) == 0 or not bool(torch.isfinite(feats).all()):
            raise ValueError(f"{where}{feature_problem(feats.cpu().numpy())}: cannot synthesise them")
        return self.normalize(feats)

    def _synthesise(self, feats: Union[np.ndarray, torch.Tensor], dtype: torch.dtype) -> np.ndarray:
        return self.synthesise_batch([feats], dtype)[0]

    @torch.inference_mode()
    def synthesise_batch(
        self,
        feats: Sequence[Union[np.ndarray, torch.Tensor]],
        dtype: torch.dtype = torch.float32,
        names: Optional[Sequence[str]] = None,
    ) -> List[np.ndarray]:
        """Synthesise several raw log-mels in one call; each output has its own length.

        The ``"fast"`` engine joins the utterances into one sequence separated by a few zero
        frames (:meth:`FastGenerator.synthesise_packed`: no padding computed) and, compiled, runs
        a padded batch; both mask the gaps or padding at every layer, so each waveform equals its
        one-by-one synthesis within float rounding. The reference engine runs a padded batch and
        only pads the input. Sort utterances by length before batching to waste little on padding.

        Args:
            feats: Raw log-mels (frames_i, n_mels).
            dtype: As for :meth:`__call__`.
            names: Utterance ids for error messages.

        Returns:
            Waveforms (frames_i * hop_length,) float32.
        """
        if not len(feats):
            return []
        names = names if names is not None else [f"item {i}" for i in range(len(feats))]
        items = [self._checked(f, name if len(feats) > 1 else "") for f, name in zip(feats, names)]
        lengths = [f.size(0) for f in items]
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype != torch.float32):
            if 0 < self.long_frames < max(lengths):  # one by one, long ones in chunks: bounded memory
                rf = receptive_field(self.generator)
                return [generate_in_chunks(self.engine, f, self.long_frames, rf).float().cpu().numpy() for f in items]
            if isinstance(self.engine, FastGenerator) and len(items) > 1:
                return [w.float().cpu().numpy() for w in self.engine.synthesise_packed([f.t() for f in items])]
            batch = torch.nn.utils.rnn.pad_sequence(items, batch_first=True).transpose(1, 2)  # (B, n_mels, T)
            if self.engine_name == "fast":
                wav = self.engine(batch, lengths if len(items) > 1 else None)
            else:
                wav = self.engine(batch)
        wav = wav[:, 0].float().cpu().numpy()
        return [wav[i, : n * self.hop_length] for i, n in enumerate(lengths)]

    def stream(
        self,
        chunks: Iterable[Union[np.ndarray, torch.Tensor]],
        dtype: torch.dtype = torch.float32,
        contract: Optional[FeatureContract] = None,
    ) -> Iterator[np.ndarray]:
        """Synthesise an utterance arriving as mel chunks; the concatenation equals :meth:`__call__`.

        Args:
            chunks: Log-mel chunks (frames, n_mels), raw or as described by ``contract``.
            dtype, contract: As for :meth:`__call__`.

        Yields:
            Waveform chunks: each frame's hop_length samples once the generator's look-ahead
            (:func:`espnet_hifigan.inference.streaming.receptive_field`) has arrived; the rest at the end.
        """
        from espnet_hifigan.inference.streaming import StreamingVocoder

        return StreamingVocoder(self, contract, dtype).stream(chunks)

    def resolve_contract(
        self, feats_scp: PathLike, contract: Optional[FeatureContract] = None, assume_raw: bool = False
    ) -> Tuple[Optional[FeatureContract], FeatureConversion]:
        """The contract of ``feats_scp`` (given, or discovered next to it) and its conversion.

        Args:
            feats_scp: The features.
            contract: Their contract (``None``: discovered next to the scp).
            assume_raw: Without any contract, take the features as raw log-mel with the
                vocoder's settings (the caller declares them so); otherwise that is an error.

        Raises:
            ContractError: no contract describes the features and ``assume_raw`` is false.
            ContractMismatch: the features cannot be decoded by this vocoder.
        """
        if contract is None:
            contract = discover_contract(feats_scp)
            if contract is None and not assume_raw:
                raise ContractError(
                    f"no feature contract for {feats_scp} (no feature_contract.yaml or feats_conf.yaml next to it, "
                    "not an ESPnet TTS decode directory): declare its features with --feats_contract FILE (their "
                    "feats_conf.yaml / feature_contract.yaml, or the TTS config.yaml), or --assume_raw_features true "
                    "if they are raw log-mel with exactly the vocoder's settings"
                )
            if contract is None:
                logging.info(f"{feats_scp}: declared raw log-mel with the vocoder's settings (--assume_raw_features)")
        conversion = self.conversion_from(contract if contract is not None else self.contract)
        logging.info(conversion.describe())
        return contract, conversion

    def decode_scp(
        self,
        feats_scp: PathLike,
        contract: Optional[FeatureContract] = None,
        keys: Optional[Set[str]] = None,
        dtype: torch.dtype = torch.float32,
        assume_raw: bool = False,
    ) -> Iterator[Tuple[str, np.ndarray]]:
        """Synthesise every utterance of a feats.scp (Kaldi ark or ESPnet npy).

        The contract is checked before the first utterance is read (see :meth:`resolve_contract`,
        also for ``assume_raw``).

        Yields:
            Utterance id and waveform (frames * hop_length,).
        """
        _, conversion = self.resolve_contract(feats_scp, contract, assume_raw)
        for utt, feats in read_feats_scp(feats_scp, keys):
            if feats.ndim != 2 or feats.shape[1] != self.n_mels:
                raise ValueError(f"{utt}: features have shape {feats.shape}; the vocoder expects (frames, {self.n_mels})")
            yield utt, self._synthesise(conversion(feats), dtype)

    def features(self, wav: np.ndarray) -> np.ndarray:
        """Raw log-mel (frames, n_mels) of a mono waveform at :attr:`fs`."""
        x = torch.as_tensor(wav, dtype=torch.float32, device=self.device)
        feats, _ = self.feats_extract(x)
        return feats[0].cpu().numpy()
