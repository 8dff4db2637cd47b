"""ESPnet's GANTrainer with a vocoder's per-epoch pictures and sounds, and preemption.

Preemption: on SIGUSR1 or SIGTERM (SLURM sends one before a time limit or preemption) the
current epoch stops at the next step, ``checkpoint.pth`` records the state in the middle of that
epoch (how many of its steps were done), and the process exits with :data:`PREEMPTED_EXIT_CODE`.
Re-running the stage (or a requeued job) with ``--resume true`` trains the rest of that epoch,
then the others: no finished step is lost and none is skipped, the run ends with the configured
number of steps. Under DDP, the rank that stops first ends its iterator, and ESPnet's own
end-of-iterator all-reduce stops every other rank at the same step.

Checkpoints are written atomically, the previous one kept, and verified before a resume
(:mod:`espnet_hifigan.train.resume`); a full disk or a damaged checkpoint is one error line.

ESPnet calls ``plot_attention`` once per epoch on ``num_att_plot`` fixed validation utterances.
A vocoder has no attention; instead we synthesise those utterances in full and keep, per epoch,
the wav and a reference-vs-generated spectrogram PNG under ``<output_dir>/att_ws/<utt>/``, and
send both (plus the reference audio once) to TensorBoard.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

import espnet2.train.trainer
import matplotlib.image
import soundfile as sf
import torch
from espnet2.torch_utils.device_funcs import to_device
from espnet2.train.gan_trainer import GANTrainer
from espnet2.train.reporter import SubReporter
from espnet2.train.trainer import TrainerOptions

from espnet_hifigan.train import resume
from espnet_hifigan.train.resume import CheckpointError

FIRST_EPOCH = 1
# Exit status of a run stopped by SIGUSR1/SIGTERM after writing its checkpoint.
PREEMPTED_EXIT_CODE = 99
PREEMPTION_SIGNALS = (signal.SIGUSR1, signal.SIGTERM)


class _Preemption:
    """Process-wide flag set by the preemption signals."""

    requested = False
    signal_name = ""
    # Whether the signal cut the current epoch short (it may also arrive after its last step).
    cut_short = False

    @classmethod
    def handler(cls, signum, frame) -> None:  # idempotent: SIGTERM may arrive twice
        cls.requested = True
        cls.signal_name = signal.Signals(signum).name

    @classmethod
    def install(cls) -> None:
        for sig in PREEMPTION_SIGNALS:
            signal.signal(sig, cls.handler)


def _until_preempted(iterator: Iterable) -> Iterator:
    """Yield batches until a preemption signal arrives."""
    for item in iterator:
        if _Preemption.requested:
            logging.warning(f"{_Preemption.signal_name} received: stopping this epoch early to checkpoint")
            _Preemption.cut_short = True
            return
        yield item


def _epoch_cut_short(options: TrainerOptions) -> bool:
    """Whether preemption cut this epoch short, on any rank."""
    cut = _Preemption.cut_short
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        flag = torch.tensor(int(cut), device="cuda" if options.ngpu > 0 else "cpu")
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        cut = bool(flag.item())
    return cut


class DeferredReporter(SubReporter):
    """ESPnet's ``SubReporter`` whose tensor statistics stay on the device until they are logged.

    ESPnet's reporter turns every registered tensor into a Python float (``.item()``): a host
    sync after each forward, before its backward. This proxy records the ``register`` and
    ``next`` calls in order, keeping tensors as they are; :meth:`flush` copies all pending
    tensors to the host at once (one copy per device and dtype) and replays the calls on the
    wrapped reporter, so it ends up holding exactly the values it would have held. Reading
    anything from it (``log_message``, ``count``, TensorBoard, ...) flushes first. It is a
    ``SubReporter`` (ESPnet's trainer type-checks its argument) that keeps no state of its own.

    Args:
        reporter: The epoch's ``SubReporter``.
    """

    def __init__(self, reporter: SubReporter):  # no super().__init__: all state is the wrapped one's
        self._reporter = reporter
        # ("register", stats, weight) or ("next",) in call order.
        self._pending: List[Tuple[Any, ...]] = []

    def register(self, stats: Dict[str, Any], weight: Any = None) -> None:
        """Record ``SubReporter.register(stats, weight)`` for the next flush."""
        self._pending.append(("register", dict(stats), weight))

    def next(self) -> None:
        """Record ``SubReporter.next()`` for the next flush."""
        self._pending.append(("next",))

    def flush(self) -> None:
        """Copy the pending tensors to the host together and replay the calls on the reporter."""
        if not self._pending:
            return
        groups: Dict[Tuple[torch.device, torch.dtype], List[torch.Tensor]] = {}
        for call in self._pending:
            if call[0] == "register":
                for value in (*call[1].values(), call[2]):
                    if isinstance(value, torch.Tensor) and value.numel() == 1:
                        groups.setdefault((value.device, value.dtype), []).append(value)
        host: Dict[int, Any] = {}
        for tensors in groups.values():
            values = torch.cat([t.detach().reshape(1) for t in tensors]).cpu().tolist()
            host.update((id(t), v) for t, v in zip(tensors, values))
        pending, self._pending = self._pending, []

        def on_host(value: Any) -> Any:
            # Tensors of other sizes go through unchanged: the reporter raises its own error.
            return host.get(id(value), value) if isinstance(value, torch.Tensor) else value

        for call in pending:
            if call[0] == "next":
                self._reporter.next()
            else:
                self._reporter.register({k: on_host(v) for k, v in call[1].items()}, on_host(call[2]))

    def log_message(self, *args, **kwargs) -> str:
        self.flush()
        return self._reporter.log_message(*args, **kwargs)

    def tensorboard_add_scalar(self, *args, **kwargs) -> None:
        self.flush()
        self._reporter.tensorboard_add_scalar(*args, **kwargs)

    def wandb_log(self, *args, **kwargs) -> None:
        self.flush()
        self._reporter.wandb_log(*args, **kwargs)

    def finished(self) -> None:
        self.flush()
        self._reporter.finished()

    def get_epoch(self) -> int:
        return self._reporter.get_epoch()

    def get_total_count(self) -> int:
        self.flush()
        return self._reporter.get_total_count()

    def __getattr__(self, name: str) -> Any:
        # Attributes (count, stats, ...) live in the wrapped reporter: bring it up to date first.
        if name.startswith("__") or name in ("_reporter", "_pending"):
            raise AttributeError(name)
        self.flush()
        return getattr(self._reporter, name)


class VocoderTrainer(GANTrainer):
    """GANTrainer whose per-epoch "attention plots" are synthesised audio and spectrograms."""

    # (epoch, steps done) of the preempted epoch the resumed checkpoint records, if any.
    _resumed_partial_epoch: Optional[Tuple[int, int]] = None

    @classmethod
    def run(cls, *args, **kwargs) -> None:
        """ESPnet's training loop: preemption handlers, atomic checkpoints, one-line errors."""
        _Preemption.install()
        try:
            with resume.atomic_torch_saves(espnet2.train.trainer):
                super().run(*args, **kwargs)
        except CheckpointError as e:
            logging.error(str(e))
            sys.exit(1)

    @classmethod
    def resume(cls, checkpoint: Path, **kwargs) -> None:
        """ESPnet's resume from the verified checkpoint (``checkpoint.prev.pth`` if needed)."""
        checkpoint, cls._resumed_partial_epoch = resume.choose_resume_checkpoint(Path(checkpoint).parent)
        try:
            super().resume(checkpoint=checkpoint, **kwargs)
        except (RuntimeError, ValueError, KeyError) as e:
            first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CheckpointError(
                f"cannot resume from {checkpoint}: it does not fit this model or optimizer configuration "
                f"({first_line}); train into a new --output_dir, or use the configuration it was trained with"
            ) from e

    @classmethod
    def train_one_epoch(cls, *, iterator: Iterable, reporter: SubReporter, **kwargs) -> bool:
        """One epoch (its remaining steps after a preemption); on preemption, checkpoint and exit."""
        if _Preemption.requested:
            # The previous epoch has finished, and been validated and checkpointed by now.
            logging.warning(f"checkpoint written after {_Preemption.signal_name}; exiting with {PREEMPTED_EXIT_CODE}")
            sys.exit(PREEMPTED_EXIT_CODE)
        epoch = reporter.get_epoch()
        done_before = 0
        if cls._resumed_partial_epoch is not None and cls._resumed_partial_epoch[0] == epoch:
            done_before = cls._resumed_partial_epoch[1]
            logging.info(f"epoch {epoch} was preempted after {done_before} steps: training its remaining steps")
            if hasattr(iterator, "__len__") and done_before >= len(iterator):
                raise CheckpointError(
                    f"{kwargs['options'].output_dir}/checkpoint.pth records {done_before} steps done in epoch {epoch}, "
                    f"but an epoch now has {len(iterator)}: resume with the num_iters_per_epoch it was trained with"
                )
        iterator = resume.skip_batches(iterator, done_before, worker_signals=PREEMPTION_SIGNALS)
        batches = _until_preempted(iterator)
        if kwargs["options"].ngpu > 0:
            # Asynchronous copies (ESPnet pins the batches when ngpu > 0); ESPnet's own copy is then a no-op.
            batches = ((ids, to_device(batch, "cuda", non_blocking=True)) for ids, batch in batches)
        # Statistics stay on the device between log lines (read once per log_interval).
        deferred = DeferredReporter(reporter)
        result = super().train_one_epoch(iterator=batches, reporter=deferred, **kwargs)
        deferred.flush()  # the last steps after the last log line
        if _epoch_cut_short(kwargs["options"]):
            cls._checkpoint_partial_epoch(epoch, done_before + reporter.count, **kwargs)
        return result

    @classmethod
    def _checkpoint_partial_epoch(cls, epoch: int, steps_done: int, *, options, distributed_option, **kwargs) -> None:
        """Write the checkpoint of an epoch stopped after ``steps_done`` steps, then exit."""
        if not distributed_option.distributed or distributed_option.dist_rank == 0:
            output_dir = Path(options.output_dir)
            states = resume.partial_epoch_states(
                output_dir, epoch, steps_done, kwargs["model"], kwargs["optimizers"], kwargs["schedulers"],
                kwargs.get("scaler"),
            )
            resume.save(states, output_dir / resume.RESUME_CHECKPOINT)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()
        logging.warning(
            f"{_Preemption.signal_name}: epoch {epoch} stopped after {steps_done} steps, checkpoint written; "
            f"exiting with {PREEMPTED_EXIT_CODE} (re-run with --resume true to train the rest)"
        )
        sys.exit(PREEMPTED_EXIT_CODE)

    @classmethod
    @torch.no_grad()
    def plot_attention(
        cls,
        model: torch.nn.Module,
        output_dir: Optional[Path],
        summary_writer,
        iterator: Iterable[Tuple[List[str], Dict[str, torch.Tensor]]],
        reporter: SubReporter,
        options: TrainerOptions,
    ) -> None:
        """Synthesise the fixed validation utterances; save wavs/PNGs; log to TensorBoard."""
        from espnet_hifigan.evaluation.plots import plot_spectrogram_pair

        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        model.eval()
        fs = model.feats_extract.fs
        epoch = reporter.get_epoch()
        device = "cuda" if options.ngpu > 0 else "cpu"
        for ids, batch in iterator:
            if options.no_forward_run:
                continue
            batch = to_device(batch, device)
            speech, speech_lengths = batch["speech"], batch["speech_lengths"]
            feats, feats_lengths = batch.get("feats"), batch.get("feats_lengths")
            if feats is None:
                feats, feats_lengths = model.feats_extract(speech, speech_lengths)
            for i, utt in enumerate(ids):
                wav = model.inference(feats[i, : feats_lengths[i]])["wav"].float().cpu().numpy()
                ref = speech[i, : speech_lengths[i]].float().cpu().numpy()
                png = None
                if output_dir is not None:
                    utt_dir = output_dir / utt
                    utt_dir.mkdir(parents=True, exist_ok=True)
                    sf.write(utt_dir / f"{epoch}ep.wav", wav, fs)
                    png = utt_dir / f"{epoch}ep.png"
                    plot_spectrogram_pair(ref, wav, fs, png, title=f"{utt}, epoch {epoch}")
                if summary_writer is not None:
                    summary_writer.add_audio(f"{utt}/generated", wav, epoch, sample_rate=fs)
                    if epoch == FIRST_EPOCH:
                        summary_writer.add_audio(f"{utt}/reference", ref, epoch, sample_rate=fs)
                    if png is not None:
                        image = matplotlib.image.imread(png)  # (H, W, 4) floats
                        summary_writer.add_image(f"{utt}/spectrogram", image, epoch, dataformats="HWC")
