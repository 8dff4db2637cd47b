"""Packed models: one zip with everything inference needs on another machine.

A packed model holds ``config.yaml`` (our config), ``model.pth`` (generator and normalisation
buffers only), ``feats_stats.npz`` (when the vocoder normalises) and ``feature_contract.yaml``.
:func:`pack_model` packs a trained experiment's checkpoint (voc.sh stage 8),
:func:`pack_loaded_vocoder` a loaded (e.g. imported) :class:`~espnet_hifigan.inference.vocoder.Vocoder`;
:func:`read_packed` reads one back.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple

import torch
import yaml

from espnet_hifigan.contract import (
    VOCODER_NORMALIZE_KEY,
    FeatureContract,
    Normalization,
    load_mapping,
    parse_mapping,
)
from espnet_hifigan.contract.foreign import PACK_CONFIG, PACK_CONTRACT
from espnet_hifigan.core.fileio import PathLike
from espnet_hifigan.formats.checkpoint_origin import check_checkpoint_origin
from espnet_hifigan.formats.weights import ModelFileError, load_state_dict
from espnet_hifigan.nets.mvn import STATS_FILE, stats_npz_bytes

if TYPE_CHECKING:
    from espnet_hifigan.inference.vocoder import Vocoder

PACK_MODEL = "model.pth"
PACK_STATS = STATS_FILE
# State-dict prefixes an inference-only model keeps.
INFERENCE_PREFIXES = ("generator.", "normalize.")
# What to do with a broken packed model.
REPACK = "copy it again, or pack it again (voc.sh stage 8: python -m espnet_hifigan.bin.pack)"
# How many members of a zip a message lists.
MAX_MEMBERS_SHOWN = 6


def _members_text(names: List[str]) -> str:
    shown = ", ".join(names[:MAX_MEMBERS_SHOWN]) or "nothing"
    return shown + (f", ... ({len(names)} in all)" if len(names) > MAX_MEMBERS_SHOWN else "")


def _zip_members(path: Path) -> List[str]:
    """The members of a zip, or :class:`ModelFileError` naming a truncated or corrupt one."""
    try:
        if not zipfile.is_zipfile(path):
            raise zipfile.BadZipFile("no end-of-archive record")
        with zipfile.ZipFile(path) as zf:
            return zf.namelist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise ModelFileError(f"{path} is a truncated or corrupt zip archive ({e}): {REPACK}") from None


def is_packed(path: PathLike) -> bool:
    """A packed model: a zip with our config inside (torch checkpoints are zips too).

    Raises:
        ModelFileError: a file that starts as a zip but is truncated or corrupt, or a ``.zip``
            that holds neither a packed model's config nor a PyTorch checkpoint (the message
            names the file and lists the members it has and needs).
    """
    path = Path(path)
    if path.suffix == ".pkl" or not path.is_file():
        return False
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            return False  # not a zip: the caller says what it is
    names = _zip_members(path)
    if PACK_CONFIG in names:
        return True
    torch_checkpoint = any(n == "data.pkl" or n.endswith("/data.pkl") for n in names)
    if path.suffix == ".zip" and not torch_checkpoint:
        raise ModelFileError(
            f"{path} is a zip without {PACK_CONFIG}, not a packed model: it holds {_members_text(names)}; a packed "
            f"model holds {PACK_CONFIG}, {PACK_MODEL} and {PACK_CONTRACT}: {REPACK}"
        )
    return False


def read_packed(path: PathLike) -> Tuple[Dict[str, Any], Dict[str, torch.Tensor], Optional[Normalization]]:
    """Config, state dict and the vocoder's own normalisation of a packed model.

    Raises:
        ModelFileError: a member is missing (the message lists those it has and needs) or corrupt.
        ContractError: its config or contract is not valid YAML (line and column named).
    """
    path = Path(path)
    names = _zip_members(path)
    missing = [m for m in (PACK_CONFIG, PACK_MODEL) if m not in names]
    if missing:
        raise ModelFileError(
            f"packed model {path} has no {' and no '.join(missing)}: it holds {_members_text(names)}; a packed "
            f"model holds {PACK_CONFIG}, {PACK_MODEL} and {PACK_CONTRACT}: {REPACK}"
        )
    try:
        with zipfile.ZipFile(path) as zf:
            members = {m: zf.read(m) for m in (PACK_CONFIG, PACK_MODEL, PACK_CONTRACT) if m in names}
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as e:
        raise ModelFileError(f"packed model {path} is corrupt ({e}): {REPACK}") from None
    texts = {}
    for member in (PACK_CONFIG, PACK_CONTRACT):
        try:
            texts[member] = members[member].decode("utf-8") if member in members else None
        except UnicodeDecodeError as e:
            raise ModelFileError(f"packed model {path}: {member} is not UTF-8 text ({e}): {REPACK}") from None
    config = parse_mapping(texts[PACK_CONFIG], f"{path}:{PACK_CONFIG}")
    state = load_state_dict(f"{path}:{PACK_MODEL}", "packed model", data=members[PACK_MODEL])
    contract = {} if texts[PACK_CONTRACT] is None else parse_mapping(texts[PACK_CONTRACT], f"{path}:{PACK_CONTRACT}")
    norm = contract.get(VOCODER_NORMALIZE_KEY)
    return config, state, None if norm is None else Normalization.from_dict(norm)


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
            stats_bytes = stats_npz_bytes(state["normalize.mean"].numpy(), state["normalize.std"].numpy())
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
    config = load_mapping(train_config)
    state = load_state_dict(model_file)
    # A checkpoint of another experiment (other statistics or features) is refused, with a table.
    check_checkpoint_origin(config, state, model_file, train_config)
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
