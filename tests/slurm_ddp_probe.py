"""Test-only training entry point: ``espnet_hifigan.bin.voc_train`` that also dumps weights.

Used by tests/test_slurm.py to check distributed training: it is started like the real train
CLI (through scripts/launch_train.sh, which adds the ESPnet distributed options), trains with the
real task and trainer, and each process writes

    <dump_dir>/init.rank<R>.pth    the model's state dict before training (after DDP's broadcast
                                    would happen, i.e. as built: same seed on every rank)
    <dump_dir>/final.rank<R>.pth   the model's state dict after the last step
    <dump_dir>/info.rank<R>.txt    "rank world_size distributed"

<dump_dir> is the environment variable SLURM_DDP_PROBE_DIR (required).
"""

import os
from pathlib import Path

import torch

from espnet_hifigan.train.task import VocoderTask

DUMP_ENV = "SLURM_DDP_PROBE_DIR"


def _state(model: torch.nn.Module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


class ProbeTrainer(VocoderTask.trainer):
    """The task's trainer; dumps every rank's weights before and after ``run``."""

    @classmethod
    def run(cls, model, *args, **kwargs):  # noqa: D102 (same as the parent's)
        dist = kwargs["distributed_option"]
        rank = dist.dist_rank if dist.distributed else 0
        world = dist.dist_world_size if dist.distributed else 1
        out = Path(os.environ[DUMP_ENV])
        out.mkdir(parents=True, exist_ok=True)
        torch.save(_state(model), out / f"init.rank{rank}.pth")
        super().run(model, *args, **kwargs)
        torch.save(_state(model), out / f"final.rank{rank}.pth")
        (out / f"info.rank{rank}.txt").write_text(f"{rank} {world} {dist.distributed}\n")


class ProbeTask(VocoderTask):
    """The vocoder task with the probing trainer."""

    trainer = ProbeTrainer


if __name__ == "__main__":
    ProbeTask.main()
