"""ESPnet's GANTrainer with a vocoder's per-epoch pictures and sounds, and preemption.

Preemption: on SIGUSR1 or SIGTERM (SLURM sends one before a time limit or preemption) the
current epoch stops at the next step, ESPnet validates and writes ``checkpoint.pth`` as at any
epoch end, and the process exits with :data:`PREEMPTED_EXIT_CODE` before the next epoch starts.
Re-running the stage (or a requeued job) resumes from that checkpoint: no finished step is lost.
Under DDP, the rank that stops first ends its iterator, and ESPnet's own end-of-iterator
all-reduce stops every other rank at the same step.

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
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

import matplotlib.image
import soundfile as sf
import torch
from espnet2.torch_utils.device_funcs import to_device
from espnet2.train.gan_trainer import GANTrainer
from espnet2.train.reporter import SubReporter
from espnet2.train.trainer import TrainerOptions

FIRST_EPOCH = 1
# Exit status of a run stopped by SIGUSR1/SIGTERM after writing its checkpoint.
PREEMPTED_EXIT_CODE = 99
PREEMPTION_SIGNALS = (signal.SIGUSR1, signal.SIGTERM)


class _Preemption:
    """Process-wide flag set by the preemption signals."""

    requested = False
    signal_name = ""

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
            return
        yield item


class VocoderTrainer(GANTrainer):
    """GANTrainer whose per-epoch "attention plots" are synthesised audio and spectrograms."""

    @classmethod
    def run(cls, *args, **kwargs) -> None:
        """ESPnet's training loop with the preemption signal handlers installed."""
        _Preemption.install()
        super().run(*args, **kwargs)

    @classmethod
    def train_one_epoch(cls, *, iterator: Iterable, **kwargs) -> bool:
        """One epoch that ends early on preemption; exits once its checkpoint is written."""
        if _Preemption.requested:
            # The previous (shortened) epoch has been validated and checkpointed by now.
            logging.warning(f"checkpoint written after {_Preemption.signal_name}; exiting with {PREEMPTED_EXIT_CODE}")
            sys.exit(PREEMPTED_EXIT_CODE)
        return super().train_one_epoch(iterator=_until_preempted(iterator), **kwargs)

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
        from espnet_hifigan.plots import plot_spectrogram_pair

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
