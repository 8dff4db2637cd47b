"""Training segments: aligned (audio, features) pieces of ``segment_size`` samples.

The one home of the cutting rule, used by the training collate function (so only segments
leave the data loader) and by the model (whole utterances given to it directly, and
validation, which cuts the first segment):

* the start is a random frame among those whose segment audio lies inside the utterance
  (the first frame when not random); frame ``j`` pairs with samples ``[j * hop, (j + 1) * hop)``;
* only frames whose audio lies fully inside the utterance are used (and, with features, that
  the features have); beyond them the audio is zero and the features are the silence value.

Cutting an already cut segment again gives it back unchanged (the start is then 0).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch


def cut_segments(
    speech: torch.Tensor,
    speech_lengths: torch.Tensor,
    feats: Optional[torch.Tensor],
    feats_lengths: Optional[torch.Tensor],
    segment_size: int,
    hop_length: int,
    silence: Optional[torch.Tensor],
    random: bool,
) -> Tuple[torch.Tensor, Optional[torch.Tensor], torch.Tensor]:
    """Cut one aligned segment per utterance.

    Args:
        speech: Waveform (B, T).
        speech_lengths: Valid samples (B,).
        feats: Raw (un-normalised) features (B, F, n_mels) or None.
        feats_lengths: Valid frames (B,) or None.
        segment_size: Samples per segment, a multiple of ``hop_length``.
        hop_length: Samples per frame.
        silence: Features of a silent frame (n_mels,), used with ``feats``.
        random: Random start (training) or the first frame.

    Returns:
        Audio (B, segment_size), features (B, segment_size // hop_length, n_mels) or None, and
        the valid frames of each segment (B,).

    Raises:
        ValueError: features whose bins differ from ``silence``'s.
    """
    frames = segment_size // hop_length
    usable = speech_lengths // hop_length  # frames whose audio lies fully inside the utterance
    if feats is not None:
        if silence is not None and feats.size(-1) != silence.numel():
            raise ValueError(
                f"input features have {feats.size(-1)} bins but the model expects {silence.numel()}"
            )
        usable = torch.minimum(usable, feats_lengths)
    max_start = (usable - frames).clamp(min=0)
    if random:
        starts = (torch.rand(max_start.shape, device=max_start.device) * (max_start + 1)).long()
    else:
        starts = torch.zeros_like(max_start)

    sample_idx = starts[:, None] * hop_length + torch.arange(segment_size, device=speech.device)
    padded_speech = torch.nn.functional.pad(speech, (0, segment_size))
    audio = padded_speech.gather(1, sample_idx).masked_fill(sample_idx >= (usable * hop_length)[:, None], 0.0)
    valid = (usable - starts).clamp(min=0, max=frames)
    if feats is None:
        return audio, None, valid
    frame_idx = starts[:, None] + torch.arange(frames, device=feats.device)
    padded = torch.nn.functional.pad(feats, (0, 0, 0, frames))
    seg = padded.gather(1, frame_idx.unsqueeze(-1).expand(-1, -1, feats.size(-1)))
    beyond = (frame_idx >= usable[:, None]).unsqueeze(-1)
    seg = torch.where(beyond, silence.to(device=seg.device, dtype=seg.dtype), seg)
    return audio, seg, valid


class SegmentCollate:
    """Collate whole utterances, then keep one random training segment of each.

    The batch that leaves the data loader holds ``speech`` (B, segment_size) with
    ``speech_lengths`` the valid samples of each segment, and (if present) ``feats``
    (B, segment_size // hop, n_mels) with ``feats_lengths`` its valid frames.

    Args:
        collate: The collate function of whole utterances (the length-checking one).
        segment_size: Samples per segment.
        hop_length: Samples per frame.
        silence: Features of a silent frame (n_mels,).
    """

    def __init__(self, collate: Callable, segment_size: int, hop_length: int, silence: torch.Tensor) -> None:
        if segment_size <= 0 or segment_size % hop_length != 0:
            raise ValueError(f"segment_size ({segment_size}) must be a positive multiple of hop_length ({hop_length})")
        self.collate = collate
        self.segment_size = segment_size
        self.hop_length = hop_length
        self.silence = silence.detach().cpu()

    def __call__(self, batch: Sequence[Tuple[str, Mapping[str, Any]]]) -> Tuple[List[str], Dict[str, torch.Tensor]]:
        """Collate ``[(utt, {"speech": (T,), "feats": (F, n_mels)}), ...]`` into segments."""
        ids, data = self.collate(batch)
        if "speech" not in data:
            return ids, data
        audio, seg, valid = cut_segments(
            data["speech"], data["speech_lengths"], data.get("feats"), data.get("feats_lengths"),
            self.segment_size, self.hop_length, self.silence, random=True,
        )
        out = dict(data, speech=audio, speech_lengths=valid * self.hop_length)
        if seg is not None:
            out.update(feats=seg, feats_lengths=valid)
        return ids, out
