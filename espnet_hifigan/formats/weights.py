"""Reading a user's model file safely: what it is, its weights, and whether they fit the generator.

Every ``torch.load`` of a file a user names goes through :func:`load_weights`: always with
``weights_only=True`` (a pickle that would run code is refused, whatever
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` says), and every failure is one :class:`ModelFileError` line
naming the file, what it is (a text file, audio, a trainer's resume checkpoint, ...) and what to
pass instead.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any, Dict, Optional

import torch

from espnet_hifigan.core.fileio import PathLike

# What a model file should be, for the "pass ... instead" part of the messages.
EXPECTED = (
    "pass a model checkpoint of voc_train (<exp>/valid.loss_mel_l1.best.pth, <exp>/latest.pth, <exp>/Nepoch.pth) "
    "with its --train_config, or a packed model.zip"
)
# The keys ESPnet's trainer writes into its resume checkpoint (checkpoint.pth).
TRAINER_CHECKPOINT_KEYS = {"model", "optimizers", "reporter"}


class ModelFileError(ValueError):
    """A model file that cannot be used (the message names the file and what to pass instead)."""


def describe_content(head: bytes) -> Optional[str]:
    """What a file that is not a checkpoint looks like, from its first bytes (``None``: unknown)."""
    if head.startswith(b"RIFF") or head.startswith(b"fLaC") or head.startswith(b"OggS"):
        return "an audio file"
    if head.startswith(b"PK\x03\x04"):
        return None  # a zip: torch checkpoints are zips too
    if head.startswith(b"\x80"):
        return None  # a pickle (legacy torch.save format)
    if not head:
        return "an empty file"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return f"a text file (it starts with {text[:40].splitlines()[0]!r})" if text.strip() else "a text file"


def load_weights(path: PathLike, role: str = "model file", data: Optional[bytes] = None) -> Any:
    """``torch.load`` a user's file with ``weights_only=True``, every failure one clear line.

    Args:
        path: The file (named in messages; read unless ``data`` is given).
        role: What the file is meant to be (``model file``, ``checkpoint``, ...).
        data: The file's content, for a member of a zip (``path`` then names it).

    Returns:
        What the file holds (a state dict, or a format's dict of them).

    Raises:
        ModelFileError: the file is missing, is no checkpoint, or holds Python objects that
            weights-only loading refuses.
    """
    path = Path(path)
    if data is None:
        if not path.is_file():
            raise ModelFileError(f"{role} {path} does not exist ({EXPECTED})")
        with open(path, "rb") as f:
            head = f.read(64)
    else:
        head = data[:64]
    what = describe_content(head)
    if what is not None:
        raise ModelFileError(f"{role} {path} is {what}, not a PyTorch checkpoint: {EXPECTED}")
    try:
        # weights_only=True explicitly: never rely on (or be undone by) TORCH_FORCE_*_WEIGHTS_ONLY_LOAD.
        return torch.load(path if data is None else io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # A class or function the pickle would import and call ("Unsupported global: ...",
        # "unsupported GLOBAL posix.system whose module posix is blocked").
        glob = next((line.strip() for line in str(e).splitlines() if "global" in line.lower()), "")
        if glob:
            first = glob.split(" We ")[0].rstrip(".")
            raise ModelFileError(
                f"{role} {path} holds Python objects that safe (weights-only) loading refuses, as they could run "
                f"code{f' ({first})' if first else ''}: not loaded; {EXPECTED}"
            ) from None
        reason = next((line.strip() for line in str(e).splitlines() if line.strip() and "Weights only" not in line), "")
        raise ModelFileError(f"{role} {path} is not a readable PyTorch checkpoint ({reason[:80]}): {EXPECTED}") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError) as e:
        if data is None and _is_packed_zip(path):
            raise ModelFileError(
                f"{role} {path} is a packed model (a zip with config.yaml and model.pth), not a checkpoint: pass "
                "it alone (--model_file model.zip, without --train_config)"
            ) from None
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelFileError(f"{role} {path} is not a readable PyTorch checkpoint ({reason}): {EXPECTED}") from None


def _is_packed_zip(path: Path) -> bool:
    """Whether ``path`` is a readable zip holding a packed model's config.yaml and model.pth."""
    try:
        with zipfile.ZipFile(path) as zf:
            return {"config.yaml", "model.pth"} <= set(zf.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def load_state_dict(path: PathLike, role: str = "model file", data: Optional[bytes] = None) -> Dict[str, torch.Tensor]:
    """A model state dict (``generator.*`` keys) from a user's file; see :func:`load_weights`.

    Raises:
        ModelFileError: as :func:`load_weights`; also for a trainer's resume checkpoint
            (``checkpoint.pth``) and for a file without generator weights.
    """
    state = load_weights(path, role, data)
    if not isinstance(state, dict):
        raise ModelFileError(f"{role} {path} holds a {type(state).__name__}, not a state dict: {EXPECTED}")
    if TRAINER_CHECKPOINT_KEYS <= set(state) and isinstance(state.get("model"), dict):
        raise ModelFileError(
            f"{role} {path} is the trainer's resume checkpoint (model, optimizers, reporter), not a model: pass "
            f"a model checkpoint next to it ({Path(path).parent}/valid.loss_mel_l1.best.pth, latest.pth or Nepoch.pth)"
        )
    if not any(isinstance(k, str) and k.startswith("generator.") for k in state):
        keys = ", ".join(str(k) for k in list(state)[:3]) or "none"
        raise ModelFileError(f"{role} {path} holds no generator.* weights (keys: {keys}, ...): {EXPECTED}")
    return state


def load_generator_state(generator: torch.nn.Module, state: Dict[str, torch.Tensor], source: str) -> None:
    """Load generator weights, or say in one line which file does not fit which config.

    Raises:
        ModelFileError: missing / unexpected keys or shape mismatches (the first few listed).
    """
    misfit = state_misfit(generator, state)
    if misfit:
        raise ModelFileError(
            f"the weights of {source or 'the model file'} do not fit the generator its config describes: "
            f"{misfit}; pass the config.yaml the checkpoint was trained with (--train_config)"
        )
    generator.load_state_dict(state)


def state_misfit(module: torch.nn.Module, state: Dict[str, torch.Tensor]) -> str:
    """How ``state`` does not fit ``module`` (shape mismatches, missing and unexpected keys, the
    first two of each named); ``""`` when it loads strictly."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k}: file {tuple(state[k].shape)} vs config {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    return ", ".join(
        f"{len(items)} {label} (e.g. {'; '.join(items[:2])})"
        for label, items in (("shape mismatches", mismatched), ("missing", missing), ("unexpected", unexpected))
        if items
    )
