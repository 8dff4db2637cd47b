"""Fast training paths of the networks: mixed precision (autocast) and ``torch.compile``.

:class:`NetworkRunner` runs the generator and the discriminator for
:class:`~espnet_hifigan.train.espnet_model.ESPnetHiFiGANModel`. Only the networks' forwards are
affected: segment cutting, the STFT/mel and every loss stay in fp32 (:func:`fp32_region`), and
the networks' outputs come back as fp32.

- ``autocast_dtype``: ``bfloat16`` (CPU or GPU; no loss scaling needed) or ``float16`` (CUDA
  only, and only with ESPnet's ``--use_amp true``, whose ``GradScaler`` keeps fp16 gradients from
  underflowing). ESPnet's ``GANTrainer`` itself wraps the whole forward in
  ``autocast("cuda", dtype=float16)`` when ``--use_amp true``; the autocast entered here is nested
  inside and wins for the networks, and the fp32 regions switch autocast off for the rest.
- ``compile``: the networks' forwards go through ``torch.compile``'d callables kept *outside* the
  module tree: parameters, buffers and ``state_dict`` keys are those of the eager modules (no
  ``_orig_mod.`` prefix in checkpoints), and inference, ``remove_weight_norm`` and packing use the
  eager modules, as does every forward in eval mode (validation). The first call of each compiled network logs how long it took (tracing and
  compiling its forward graph; the backward graph compiles at the first backward).
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any, Callable, ContextManager, Dict, Optional

import torch

AUTOCAST_DTYPES: Dict[str, torch.dtype] = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def parse_autocast_dtype(name: Optional[str]) -> Optional[torch.dtype]:
    """The torch dtype of a config's ``autocast_dtype`` (None: fp32).

    Raises:
        ValueError: an unknown name.
    """
    if name is None or name in ("null", "none", "float32"):
        return None
    if name not in AUTOCAST_DTYPES:
        raise ValueError(f"model_conf autocast_dtype must be null, bfloat16 or float16, got {name!r}")
    return AUTOCAST_DTYPES[name]


def fp32_region(device: torch.device) -> ContextManager:
    """A region where autocast is off (segments, STFT/mel, losses), whatever the device."""
    return torch.autocast(device_type=device.type, enabled=False)


def to_float32(outputs: Any) -> Any:
    """``outputs`` (a tensor or nested lists/tuples of tensors) with every tensor in fp32."""
    if isinstance(outputs, torch.Tensor):
        return outputs.float()
    return type(outputs)(to_float32(o) for o in outputs)


class NetworkRunner:
    """Calls a network under the configured autocast, compiled or eager; fp32 outputs.

    Args:
        autocast_dtype: None (fp32), ``"bfloat16"`` or ``"float16"``.
        compile: Run the networks through ``torch.compile``.
        compile_mode: ``torch.compile`` mode (None, ``"default"``, ``"reduce-overhead"``,
            ``"max-autotune"``, ...).
        compile_backend: ``torch.compile`` backend (``"inductor"``; ``"aot_eager"`` checks graph
            capture without code generation).
    """

    def __init__(
        self,
        autocast_dtype: Optional[str] = None,
        compile: bool = False,
        compile_mode: Optional[str] = None,
        compile_backend: str = "inductor",
    ):
        self.autocast_dtype = parse_autocast_dtype(autocast_dtype)
        self.compile = compile
        self.compile_mode = compile_mode
        self.compile_backend = compile_backend
        # name -> (id of the module, the compiled callable); never registered as submodules.
        self._compiled: Dict[str, tuple] = {}

    def check_device(self, device: torch.device, training: bool) -> None:
        """Refuse a dtype that the device or the trainer cannot train with.

        Raises:
            ValueError: float16 on a CPU; float16 training on CUDA without ESPnet's GradScaler
                (``--use_amp true``, seen as the trainer's enclosing CUDA autocast).
        """
        if self.autocast_dtype != torch.float16:
            return
        if device.type != "cuda":
            raise ValueError(
                f"model_conf autocast_dtype: float16 needs a CUDA device (the input is on {device.type}); "
                "use bfloat16 or null there"
            )
        if training and torch.is_grad_enabled() and not torch.is_autocast_enabled("cuda"):
            raise ValueError(
                "model_conf autocast_dtype: float16 trains only with loss scaling: run voc_train with "
                "--use_amp true (ESPnet's GradScaler), or use autocast_dtype: bfloat16"
            )

    def autocast(self, device: torch.device) -> ContextManager:
        """The networks' autocast region on ``device`` (a no-op in fp32)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.autocast_dtype)

    def __call__(self, name: str, module: torch.nn.Module, x: torch.Tensor, training: bool = True) -> Any:
        """``module(x)`` under the autocast, through its compiled version if configured.

        Args:
            name: ``"generator"`` or ``"discriminator"`` (names the compiled callable and the log).
            module: The eager network.
            x: Its input, e.g. (B, n_mels, frames) or (B, 1, T).
            training: Whether the model trains (float16 then needs the GradScaler).

        Returns:
            The network's output with every tensor in fp32.
        """
        self.check_device(x.device, training)
        if not self.compile or not module.training:
            # Eager in eval mode (validation, inference): whole utterances of any length would
            # only add recompilations.
            with self.autocast(x.device):
                return to_float32(module(x))
        if getattr(module, "_is_replica", False):
            raise ValueError(
                "model_conf compile: true does not work with DataParallel (--ngpu > 1 in one process): "
                "train with DDP (--multiprocessing_distributed true), or set compile: false"
            )
        entry = self._compiled.get(name)
        first = entry is None or entry[0] != id(module)
        if first:
            # Static shapes: training shapes are fixed (the D turn's 2B and the G turn's B batches
            # get a graph each); dynamic shapes made inductor fail on the period reshapes.
            compiled = torch.compile(
                self._eager_fn(name, module), mode=self.compile_mode, backend=self.compile_backend, dynamic=False
            )
            entry = self._compiled[name] = (id(module), compiled)
            start = time.perf_counter()
        out = entry[1](x)
        if first:
            logging.info(
                f"compiled {name} in {time.perf_counter() - start:.1f} s "
                f"(torch.compile backend={self.compile_backend}, mode={self.compile_mode}; first forward)"
            )
        return out

    def _eager_fn(self, name: str, module: torch.nn.Module) -> Callable[[torch.Tensor], Any]:
        """The function that is compiled: autocast, the network, the cast of its outputs."""

        def forward(x: torch.Tensor) -> Any:
            with self.autocast(x.device):
                out = module(x)
            return to_float32(out)

        # A code object of its own per network: dynamo's graph cache and recompilation limit
        # are per code object, and the generator's graphs must not count against the discriminator's.
        forward.__code__ = forward.__code__.replace(co_name=f"{name}_forward")
        return forward
