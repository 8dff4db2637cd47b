"""Text to waveform in one call: an ESPnet tts1 experiment's mels through our vocoder.

ESPnet's own ``Text2Speech`` only vocodes with ParallelWaveGAN ``.pkl`` files; :class:`TextToWav`
runs ESPnet's ``Text2Speech`` without a vocoder for the mel and :class:`~espnet_hifigan.inference.vocoder.Vocoder`
for the audio:

>>> tts = TextToWav("../tts1/exp/tts_train_tacotron2_raw_phn", "exp/hifigan/packed/model.zip")
>>> wav = tts("Hello world.")               # float32 in [-1, 1] at tts.fs
>>> wav = tts("Hello world.", sids=3)       # multi-speaker TTS: sids, spembs (x-vector .npy), lids

Feature contract: at construction, before the TTS is even loaded, the features of the TTS's
``config.yaml`` are compared with the vocoder's, as ``chain.sh`` does
(:mod:`espnet_hifigan.bin.tts_contract`): a difference in any field raises
:class:`~espnet_hifigan.contract.ContractMismatch` with the table of the differing fields. A TTS
that normalises its mels (``normalize: global_mvn``) outputs normalised mels (``feat_gen``);
the vocoder gets them de-normalised with the TTS's own statistics (ESPnet's ``feat_gen_denorm``,
the model's ``GlobalMVN`` inverse), i.e. raw log-mel, which it normalises with its own.

Relative paths: an ESPnet ``config.yaml`` names its token list, statistics, BPE model and
non-linguistic symbols relative to the TTS recipe directory (``egs2/<corpus>/tts1``), by default
two levels above the experiment (as ``chain.sh --tts_recipe_dir``). They are made absolute in a
temporary copy of the config that ``Text2Speech`` reads: nothing depends on the current
directory, at construction or at synthesis.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import numpy as np
import torch
import yaml

from espnet_hifigan.contract import (
    ContractError,
    FeatureContract,
    load_mapping,
    reconcile,
)
from espnet_hifigan.contract.foreign import is_espnet_tts_config
from espnet_hifigan.core.fileio import PathLike
from espnet_hifigan.inference.vocoder import Vocoder

# A speaker or language id, or an array of them.
IdInput = Union[int, np.ndarray, torch.Tensor, None]
# An x-vector: the array, or the path of its .npy.
EmbeddingInput = Union[PathLike, np.ndarray, torch.Tensor, None]
__all__ = ["DEFAULT_TTS_MODEL_FILE", "SHORT_OUTPUT_FRAMES", "TextToWav", "tts_config_with_absolute_paths"]

# ESPnet tts.sh's default inference model (and chain.sh's --tts_inference_model).
DEFAULT_TTS_MODEL_FILE = "train.loss.ave.pth"
# Keys of an ESPnet TTS config.yaml (at any depth) whose string values are recipe-relative files.
TTS_CONFIG_PATH_KEYS = ("token_list", "bpemodel", "non_linguistic_symbols", "stats_file")
# Outputs shorter than this (frames: 0.09 s at 22.05 kHz / hop 256, 0.13 s at 16 kHz) are shorter than
# any spoken word: a TTS that stopped at once (1-3 frames) or said nothing (empty text: 2-4 frames).
# espnet-hifigan-tts warns about each and lists them.
SHORT_OUTPUT_FRAMES = 8
# Tokens that are no sound of their own: separators, and the unknown symbol (added from the converter).
SILENT_TOKENS = ("<space>", "<blank>")
# Text2Speech arguments this class sets itself.
RESERVED_TEXT2SPEECH_ARGS = ("train_config", "model_file", "vocoder_config", "vocoder_file", "device")


def tts_config_with_absolute_paths(config: Mapping[str, Any], recipe_dir: Path, source: str) -> Dict[str, Any]:
    """A copy of an ESPnet TTS config whose recipe-relative files are absolute paths.

    Args:
        config: The TTS ``config.yaml`` mapping.
        recipe_dir: The TTS recipe directory the relative paths hold from.
        source: The config's path (messages).

    Raises:
        FileNotFoundError: a relative file is not under ``recipe_dir``.
    """

    def fix(node: Any, where: str) -> Any:
        if isinstance(node, Mapping):
            out = {}
            for key, value in node.items():
                name = f"{where}.{key}" if where else str(key)
                if key in TTS_CONFIG_PATH_KEYS and isinstance(value, str) and not Path(value).is_absolute():
                    resolved = recipe_dir / value
                    if not resolved.exists():
                        raise FileNotFoundError(
                            f"{source}: {name} {value!r} is not under the TTS recipe directory {recipe_dir} "
                            "(the config's relative paths hold from there): pass tts_recipe_dir "
                            "(--tts_recipe_dir), the directory the TTS was trained in"
                        )
                    value = str(resolved)
                out[key] = fix(value, name)
            return out
        if isinstance(node, list):
            return [fix(item, where) for item in node]
        return node

    return fix(config, "")


def _as_ids(value: IdInput) -> Optional[np.ndarray]:
    """A speaker/language id as the 1-element int64 array ESPnet's Text2Speech takes."""
    if value is None or isinstance(value, (np.ndarray, torch.Tensor)):
        return value
    return np.array([int(value)], dtype=np.int64)


def _as_embedding(value: EmbeddingInput) -> Optional[Union[np.ndarray, torch.Tensor]]:
    """An x-vector array (a ``.npy`` path is loaded), float32."""
    if value is None or isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (str, Path)):
        path = Path(value)
        if not path.is_file():
            raise FileNotFoundError(f"speaker embedding {path} does not exist (expected an x-vector .npy)")
        value = np.load(path)
    value = np.asarray(value, dtype=np.float32)
    if value.ndim != 1:
        raise ValueError(f"speaker embedding of shape {value.shape}: expected one vector (spk_embed_dim,)")
    return value


class TextToWav:
    """An ESPnet TTS and our vocoder as one text-to-waveform function.

    Args:
        tts_exp: The ESPnet tts1 experiment directory (``config.yaml`` + checkpoints).
        vocoder: Anything :meth:`Vocoder.from_pretrained` loads (packed ``model.zip``, experiment
            directory, ...).
        tts_model_file: The TTS checkpoint: a path, or a file name inside ``tts_exp``
            (default :data:`DEFAULT_TTS_MODEL_FILE`).
        tts_recipe_dir: Where the TTS config's relative paths hold (default: two levels above
            ``tts_exp``, as in ``egs2/<corpus>/tts1/exp/<tts_exp>``).
        vocoder_model_file: Checkpoint name for a vocoder experiment directory (default: its best).
        device: Torch device of both models.
        **text2speech_kwargs: Passed to ESPnet's ``Text2Speech`` (``maxlenratio``, ``threshold``,
            ``seed``, ``always_fix_seed``, ...).

    Raises:
        ContractMismatch: the TTS's features differ from the vocoder's (before the TTS is loaded).
        FileNotFoundError: the experiment, checkpoint or a file the TTS config names is missing.
        ContractError: ``tts_exp`` is not an ESPnet TTS experiment with fbank features.
    """

    def __init__(
        self,
        tts_exp: PathLike,
        vocoder: PathLike,
        tts_model_file: Optional[PathLike] = None,
        tts_recipe_dir: Optional[PathLike] = None,
        vocoder_model_file: Optional[PathLike] = None,
        device: str = "cpu",
        **text2speech_kwargs: Any,
    ):
        reserved = sorted(set(text2speech_kwargs) & set(RESERVED_TEXT2SPEECH_ARGS))
        if reserved:
            raise TypeError(f"TextToWav sets {reserved} of Text2Speech itself")
        tts_exp = Path(tts_exp)
        self.tts_config = tts_exp / "config.yaml"
        if not self.tts_config.is_file():
            raise FileNotFoundError(f"{self.tts_config} does not exist: tts_exp must be an ESPnet tts1 experiment directory")
        config = load_mapping(self.tts_config)
        if not is_espnet_tts_config(config):
            raise ContractError(f"{self.tts_config} is not an ESPnet TTS config (no 'tts' and 'feats_extract')")
        self.tts_model_file = self._model_file(tts_exp, tts_model_file)
        self.tts_recipe_dir = Path(tts_recipe_dir) if tts_recipe_dir is not None else tts_exp.resolve().parents[1]
        if not self.tts_recipe_dir.is_dir():
            raise FileNotFoundError(f"TTS recipe directory {self.tts_recipe_dir} does not exist")
        self.tts_recipe_dir = self.tts_recipe_dir.resolve()

        # The contract first: a mismatch stops here, before the TTS is loaded.
        self.vocoder = Vocoder.from_pretrained(vocoder, vocoder_model_file, device)
        self.tts_contract = FeatureContract.from_espnet_tts_config(
            self.tts_config, normalized=False, base_dirs=(self.tts_recipe_dir,)
        )
        self.conversion = reconcile(
            self.tts_contract,
            self.vocoder.feature_contract(),
            hint=f"Train the vocoder with the TTS's feature settings ({self.tts_config}).",
            labels=("TTS", "vocoder"),
        )
        logging.info(f"feature contracts match: {self.tts_contract.source} and {self.vocoder.contract.source}")
        self.text2speech = self._build_text2speech(config, device, text2speech_kwargs)

    @staticmethod
    def _model_file(tts_exp: Path, tts_model_file: Optional[PathLike]) -> Path:
        """The TTS checkpoint: a path as given, else a name inside ``tts_exp``."""
        if tts_model_file is None:
            name, candidates = Path(DEFAULT_TTS_MODEL_FILE), [tts_exp / DEFAULT_TTS_MODEL_FILE]
        else:
            name = Path(tts_model_file)
            candidates = [name, tts_exp / name]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(
            f"TTS checkpoint {name} not found (as a path or inside {tts_exp}): pass tts_model_file "
            "(--tts_model_file), e.g. one of " + ", ".join(sorted(p.name for p in tts_exp.glob("*.pth"))[:5])
        )

    def _build_text2speech(self, config: Dict[str, Any], device: str, kwargs: Dict[str, Any]):
        """ESPnet's Text2Speech on a copy of the config with absolute paths, without a vocoder."""
        from espnet2.bin.tts_inference import Text2Speech

        absolute = tts_config_with_absolute_paths(config, self.tts_recipe_dir, str(self.tts_config))
        with tempfile.TemporaryDirectory(prefix="tts_config_") as tmp:
            config_file = Path(tmp) / "config.yaml"
            config_file.write_text(yaml.safe_dump(absolute, allow_unicode=True, sort_keys=False), encoding="utf-8")
            text2speech = Text2Speech(
                train_config=config_file, model_file=self.tts_model_file, device=device, **kwargs
            )
        # Without a vocoder file ESPnet builds Griffin-Lim: it is never used here.
        text2speech.vocoder = None
        return text2speech

    @property
    def fs(self) -> int:
        """Output sampling rate (the TTS's and the vocoder's, which the contract made equal)."""
        return self.vocoder.fs

    def text_problem(self, text: str) -> Optional[str]:
        """Why ``text`` cannot be said, or ``None``: it is empty, or no token of it is known to the TTS.

        The text is tokenised as ``Text2Speech`` does (cleaner, G2P, token list). A text of
        ``<unk>`` tokens (another script, case or language than the TTS's training text) and word
        separators only would come out as a few frames of noise, not speech.
        """
        if not text.strip():
            return "the text is empty"
        preprocess = getattr(self.text2speech, "preprocess_fn", None)
        converter = getattr(preprocess, "token_id_converter", None)
        unk = getattr(converter, "unk_id", None)
        if unk is None:  # no token list to judge by (a converter of another kind)
            return None
        ids = np.asarray(preprocess("<dummy>", dict(text=text))["text"]).reshape(-1).tolist()
        silent = {unk} | {converter.token2id[t] for t in SILENT_TOKENS if t in converter.token2id}
        if not ids:
            return f"{text!r} has no tokens after the TTS's text processing"
        if all(i in silent for i in ids):
            return (
                f"no token of {text!r} is in the TTS's token list ({ids.count(unk)} of its {len(ids)} tokens are "
                f"{converter.unk_symbol}): it would be a few frames of noise; write it in the script, case and "
                "language the TTS was trained on"
            )
        return None

    def mel(
        self,
        text: str,
        sids: IdInput = None,
        spembs: EmbeddingInput = None,
        lids: IdInput = None,
        **inputs: Any,
    ) -> np.ndarray:
        """The TTS's raw (de-normalised) log-mel of ``text``, (frames, n_mels).

        Args:
            text: The sentence (ESPnet's cleaner, G2P and token list apply).
            sids: Speaker id of a multi-speaker TTS.
            spembs: Speaker embedding (x-vector array or its ``.npy`` path).
            lids: Language id.
            **inputs: Other inputs of ``Text2Speech.__call__`` (``decode_conf``, ``durations``, ...).

        Raises:
            ValueError: the text is empty or has no token the TTS knows (:meth:`text_problem`).
        """
        problem = self.text_problem(text) if isinstance(text, str) else None
        if problem is not None:
            raise ValueError(problem)
        output = self.text2speech(
            text, sids=_as_ids(sids), spembs=_as_embedding(spembs), lids=_as_ids(lids), **inputs
        )
        # feat_gen_denorm exists when the TTS normalises; otherwise feat_gen is raw already.
        mel = output.get("feat_gen_denorm")
        if mel is None:
            mel = output["feat_gen"]
        return mel.detach().float().cpu().numpy()

    def __call__(
        self,
        text: str,
        sids: IdInput = None,
        spembs: EmbeddingInput = None,
        lids: IdInput = None,
        **inputs: Any,
    ) -> np.ndarray:
        """Synthesise ``text``: the waveform (float32, (frames * hop,), at :attr:`fs`).

        Arguments as :meth:`mel`.
        """
        return self.vocoder(self.conversion(self.mel(text, sids=sids, spembs=spembs, lids=lids, **inputs)))
