"""Training segments cut in the collate function: pairing, padding, and the model's view of them."""

from pathlib import Path

import numpy as np
import pytest
import torch

from espnet_hifigan.nets.features import LogMelSpectrogram
from espnet_hifigan.train.segments import SegmentCollate
from espnet_hifigan.train.task import VocoderTask

HOP = 256
SEGMENT = 8 * HOP
N_MELS = 80
DEBUG_CONFIG = Path(__file__).resolve().parents[1] / "conf" / "hifigan_debug.yaml"


def _utterance(samples: int, feats_frames: int):
    """Every sample carries the index of its frame; every feature frame carries its own index + 1."""
    speech = (np.arange(samples) // HOP).astype(np.float32)
    feats = np.repeat((np.arange(feats_frames, dtype=np.float32) + 1)[:, None], N_MELS, axis=1)
    return dict(speech=speech, feats=feats)


def _collate(silence=None) -> SegmentCollate:
    from espnet2.train.collate_fn import CommonCollateFn

    silence = LogMelSpectrogram(hop_length=HOP).silence_value() if silence is None else silence
    return SegmentCollate(CommonCollateFn(float_pad_value=0.0, int_pad_value=0), SEGMENT, HOP, silence)


def test_collate_cuts_aligned_segments_and_pads_short_ones():
    torch.manual_seed(0)
    collate = _collate()
    lengths = [20 * HOP + 17, 12 * HOP, 5 * HOP + 100]  # the last is shorter than a segment
    batch = [(f"u{i}", _utterance(n, n // HOP + 1)) for i, n in enumerate(lengths)]
    silence = collate.silence
    starts = set()
    for _ in range(20):
        ids, out = collate(batch)
        assert ids == ["u0", "u1", "u2"]
        audio, feats = out["speech"], out["feats"]
        assert audio.shape == (3, SEGMENT) and feats.shape == (3, SEGMENT // HOP, N_MELS)
        assert out["feats_lengths"].tolist() == [8, 8, 5] and out["speech_lengths"].tolist() == [8 * HOP, 8 * HOP, 5 * HOP]
        chunks = audio.view(3, -1, HOP)
        for b in range(2):
            start = int(chunks[b, 0, 0])
            starts.add((b, start))
            assert 0 <= start <= lengths[b] // HOP - 8
            # frame j of the segment pairs with samples [j * hop, (j + 1) * hop) of the same frame
            expected = torch.arange(start, start + 8, dtype=torch.float32)
            assert torch.equal(chunks[b], expected[:, None].expand(8, HOP))
            assert torch.equal(feats[b], (expected + 1)[:, None].expand(8, N_MELS))
        # the short utterance starts at 0; past its last whole frame: zeros and the silence value
        assert torch.equal(chunks[2, :5], torch.arange(5.0)[:, None].expand(5, HOP))
        assert torch.all(audio[2, 5 * HOP :] == 0)  # its 100 samples of a partial frame are dropped
        assert torch.equal(feats[2, :5], torch.arange(1.0, 6.0)[:, None].expand(5, N_MELS))
        assert torch.equal(feats[2, 5:], silence.expand(3, N_MELS))
    assert len({s for b, s in starts if b == 0}) > 3  # random starts


def test_collate_without_features_cuts_audio_only():
    torch.manual_seed(0)
    ids, out = _collate()([("a", dict(speech=np.ones(3 * HOP + 5, np.float32)))])
    assert "feats" not in out
    assert out["speech"].shape == (1, SEGMENT) and out["speech_lengths"].tolist() == [3 * HOP]
    assert torch.all(out["speech"][0, : 3 * HOP] == 1) and torch.all(out["speech"][0, 3 * HOP :] == 0)


def test_model_gets_the_segments_it_cut_before():
    """The collate path equals the model cutting whole utterances (same random stream), and the
    model leaves collated segments as they are."""
    from test_model import (  # the small model of the model tests
        SEGMENT as MODEL_SEGMENT,
    )
    from test_model import _model

    assert MODEL_SEGMENT == SEGMENT
    model = _model().train()
    collate = _collate(model.feats_extract.silence_value())
    lengths = [20 * HOP + 17, 9 * HOP, 3 * HOP]
    batch = [(f"u{i}", _utterance(n, n // HOP + 1)) for i, n in enumerate(lengths)]
    from espnet2.train.collate_fn import CommonCollateFn

    _, whole = CommonCollateFn(float_pad_value=0.0, int_pad_value=0)(batch)
    torch.manual_seed(3)
    seg_model, audio_model = model._cut_segments(whole["speech"], whole["speech_lengths"], whole["feats"], whole["feats_lengths"])
    torch.manual_seed(3)
    _, cut = collate(batch)
    assert torch.equal(cut["speech"], audio_model) and torch.equal(cut["feats"], seg_model)
    seg_again, audio_again = model._cut_segments(cut["speech"], cut["speech_lengths"], cut["feats"], cut["feats_lengths"])
    assert torch.equal(audio_again, cut["speech"]) and torch.equal(seg_again, cut["feats"])


@pytest.mark.parametrize("train", [True, False])
def test_task_collate_cuts_training_batches_only(train):
    args = VocoderTask.get_parser().parse_args(["--config", str(DEBUG_CONFIG), "--normalize", "none"])
    collate = VocoderTask.build_collate_fn(args, train=train)
    hop = args.feats_extract_conf["hop_length"]
    samples = 4 * args.model_conf["segment_size"]
    batch = [("u", dict(speech=np.zeros(samples, np.float32), feats=np.zeros((samples // hop + 1, 80), np.float32)))]
    _, out = collate(batch)
    assert out["speech"].shape[1] == (args.model_conf["segment_size"] if train else samples)


def test_mismatched_feature_bins_are_refused():
    batch = [("u", dict(speech=np.zeros(4 * SEGMENT, np.float32), feats=np.zeros((33, 40), np.float32)))]
    with pytest.raises(ValueError, match="40 bins but the model expects 80"):
        _collate()(batch)
