"""Decode features (or copy-synthesise audio) into wavs with a trained vocoder.

Writes ``<output_dir>/wav/<utt>.wav``, ``<output_dir>/wav.scp`` and ``<output_dir>/timing.json``
(audio seconds, compute seconds, real-time factor, device). Output appears only when every
utterance has been decoded: a failure leaves no partial ``wav.scp``.

Feature contract: the features of ``--feats_scp`` are described by ``--feats_contract`` (any file
``espnet_hifigan.contract.FeatureContract.load`` reads: a contract / ``feats_conf.yaml``, an
ESPnet TTS ``config.yaml``, ...) or, without it, by a ``feature_contract.yaml`` /
``feats_conf.yaml`` next to the scp (or next to ``--origin_scp``, the original of a split scp),
or by the TTS ``config.yaml`` above an ESPnet
``tts_inference`` output (``<tts_exp>/<decode>/<set>/{norm,denorm}/feats.scp``). Before anything is
written it is compared with the vocoder's: any difference but normalisation stops decoding with a
table of the differing fields (exit 1); TTS-normalised features are de-normalised with the TTS
statistics (the vocoder normalises raw features itself), which is logged. Features that no
contract describes are refused unless ``--assume_raw_features true`` declares them raw log-mel
with the vocoder's settings. A vocoder with normalisation statistics also compares the first
utterances' per-bin mean with its own (``--check_feats_stats``): a wrong log base or normalised
features stop decoding with the numbers shown.

Bad input stops decoding with one line naming the utterance (exit 1, nothing written): a repeated
utterance id, an id that cannot be a file name (``../x``, ``/abs/x``, ``spk/utt``, too long), an
``--output_dir`` whose outputs would overwrite an input (its ``wav.scp``, audio, model), features with no frames or NaN/Inf values, audio with NaN/Inf samples;
``--skip_bad_utts true`` skips such utterances instead (listed in the log and in
``timing.json``'s ``skipped``).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from itertools import chain, islice
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np
import soundfile as sf
import torch
from espnet2.utils.types import str2bool

from espnet_hifigan.contract import ContractError, load_contract_for_scp
from espnet_hifigan.core.fileio import remove_unlisted
from espnet_hifigan.core.safety import (
    check_output_dir_not_data_dir,
    check_outputs_not_inputs,
    check_utt_ids,
)
from espnet_hifigan.core.scp import read_feats_scp, read_key_file, read_scp, write_scp
from espnet_hifigan.core.wav_scp import audio_input_files, read_audio
from espnet_hifigan.inference.batching import (
    CPU_BATCH_FRAMES,
    GPU_BATCH_FRAMES,
    length_batches,
    resolve_dtype,
)
from espnet_hifigan.inference.input_checks import (
    STATS_CHECK_UTTS,
    audio_problem,
    check_feature_statistics,
    feature_problem,
)
from espnet_hifigan.inference.streaming import synthesise_in_chunks
from espnet_hifigan.inference.vocoder import Vocoder

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_file", required=True, help="Checkpoint (*.pth) or packed model (*.zip)")
    parser.add_argument("--train_config", default=None, help="config.yaml of the experiment (not for *.zip)")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--feats_scp", help="Raw log-mel features: Kaldi ark scp or npy scp")
    src.add_argument("--wav_scp", help="Audio for copy synthesis (features are computed here)")
    parser.add_argument(
        "--feats_contract",
        default=None,
        help="Contract of --feats_scp (contract/feats_conf.yaml, ESPnet TTS config.yaml, ...); "
        "default: discovered next to the scp",
    )
    parser.add_argument(
        "--origin_scp",
        default=None,
        help="The scp --feats_scp was split from: its contract is discovered, and relative paths "
        "resolved, next to it",
    )
    parser.add_argument(
        "--assume_raw_features",
        type=str2bool,
        default=False,
        help="true: features without any contract (--feats_contract, or a contract file next to the scp) are "
        "taken as raw log-mel with the vocoder's settings; false: such features are refused",
    )
    parser.add_argument(
        "--check_feats_stats",
        type=str2bool,
        default=True,
        help=f"Compare the per-bin mean of the first {STATS_CHECK_UTTS} utterances with the vocoder's "
        "normalisation statistics and stop on a gross mismatch (wrong log base, normalised features)",
    )
    parser.add_argument(
        "--skip_bad_utts",
        type=str2bool,
        default=False,
        help="true: skip (and list) utterances with no frames, NaN/Inf values or too few samples; "
        "false: stop on the first",
    )
    parser.add_argument("--key_file", default=None, help="Decode only the utterances listed (first column)")
    parser.add_argument("--output_dir", required=True, help="Where wav/, wav.scp and timing.json go")
    parser.add_argument("--ngpu", type=int, default=0, help="0: CPU, 1: the first visible GPU")
    parser.add_argument(
        "--dtype",
        choices=sorted(DTYPES) + ["auto"],
        default="float32",
        help="bfloat16/float16: autocast (GPU fast paths); auto: bfloat16 on a CUDA device that supports it, "
        "else float32",
    )
    parser.add_argument(
        "--batch_size",
        type=int,
        default=None,
        help="Frames per batch, padding included: utterances are sorted by length and batched up to this "
        "budget, each output trimmed to its own length (same audio as one by one; the fast engine joins a "
        f"batch into one sequence, computing no padding); 0: one utterance at a time; default: "
        f"{CPU_BATCH_FRAMES} on the CPU (longer sequences leave the caches and run slower), "
        f"{GPU_BATCH_FRAMES} on a GPU",
    )
    parser.add_argument(
        "--engine",
        choices=["fast", "reference"],
        default="fast",
        help="fast: espnet_hifigan.inference.engine (channels-last, polyphase upsamplers; same function); "
        "reference: the HiFiGANGenerator module",
    )
    parser.add_argument(
        "--compile", type=str2bool, default=False, help="torch.compile the engine (dynamic shapes; GPU)"
    )
    parser.add_argument(
        "--fft_convs",
        type=str2bool,
        default=True,
        help="fast engine, fp32 on the CPU: compute the wide layers by FFT (V1: ~1.05x faster, ~520 MiB more "
        "memory); false: all direct",
    )
    parser.add_argument(
        "--backend",
        choices=["pytorch", "onnxruntime", "torchscript"],
        default="pytorch",
        help="onnxruntime/torchscript: the model is exported on the fly (espnet_hifigan.export.exporters, into a temp "
        "dir) and that export synthesises; contract checks and copy-synthesis features stay PyTorch's",
    )
    parser.add_argument(
        "--chunk_frames",
        type=int,
        default=0,
        help="0: synthesise each utterance at once; N > 0: stream it N frames at a time "
        "(espnet_hifigan.inference.streaming; same audio as offline)",
    )
    parser.add_argument(
        "--num_threads",
        type=int,
        default=0,
        help="CPU threads of torch (torch.set_num_threads, and one inter-op thread); 0: torch's default. "
        "Recorded in timing.json's device",
    )
    parser.add_argument("--log_level", default="INFO")
    return parser


def set_threads(num_threads: int) -> None:
    """Use ``num_threads`` torch CPU threads (and one inter-op thread, when still allowed); 0: keep the default.

    Args:
        num_threads: Intra-op threads; 0 leaves torch's default.
    """
    if num_threads <= 0:
        return
    torch.set_num_threads(num_threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # inter-op work already started in this process: the setting is fixed
        logging.debug("torch inter-op threads already fixed; left as they are")


def _wav_items(wav_scp: str, vocoder: Vocoder, keys: Optional[set]) -> Iterator[Tuple[str, np.ndarray, Optional[str]]]:
    """``(utt, features, problem)`` of the audio of a wav.scp (features ``None`` when ``problem``)."""
    with open(wav_scp, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            utt, path = line.strip().split(maxsplit=1)
            if keys is not None and utt not in keys:
                continue
            try:  # the one wav.scp reader: files and Kaldi's extended filenames ("cmd |")
                data, fs = read_audio(path)
            except Exception as e:  # noqa: BLE001 - re-raised with the utterance named
                raise ValueError(f"{wav_scp}:{lineno}: cannot read audio of {utt} from {path}: {e}") from e
            if data.shape[1] != 1:
                raise ValueError(f"{wav_scp}:{lineno}: {utt} has {data.shape[1]} channels; expected mono")
            wav = data[:, 0]
            if fs != vocoder.fs:
                raise ValueError(f"{wav_scp}:{lineno}: {utt} is sampled at {fs} Hz; the vocoder expects {vocoder.fs} Hz")
            problem = audio_problem(wav, vocoder.feats_extract.min_samples)
            yield utt, None if problem else vocoder.features(wav), problem


def _good_items(
    items: Iterable[Tuple[str, Optional[np.ndarray], Optional[str]]], scp: str, skip: bool, skipped: List[str]
) -> Iterator[Tuple[str, np.ndarray]]:
    """The utterances that can be synthesised; the others stop decoding (or, ``skip``, are listed)."""
    for utt, feats, problem in items:
        if problem is None:
            problem = feature_problem(feats)
        if problem is None:
            yield utt, feats
        elif skip:
            logging.warning(f"{utt}: {problem}; skipped (--skip_bad_utts)")
            skipped.append(utt)
        else:
            raise ValueError(f"{utt} ({scp}): {problem}; fix or remove it, or pass --skip_bad_utts true to skip it")


def _checked_shape(utt: str, feats: np.ndarray, n_mels: int) -> np.ndarray:
    if feats.ndim != 2 or feats.shape[1] != n_mels:
        raise ValueError(f"{utt}: features have shape {feats.shape}; the vocoder expects (frames, {n_mels})")
    return feats


def _batches(items: List[Tuple[str, np.ndarray]], budget: int) -> Iterator[List[Tuple[str, np.ndarray]]]:
    """``items`` in batches of similar length (:func:`length_batches`)."""
    for batch in length_batches([feats.shape[0] for _, feats in items], budget):
        yield [items[i] for i in batch]


def check_paths(args: argparse.Namespace, ids: Dict[str, str]) -> None:
    """Refuse ids that cannot be file names and outputs that would overwrite an input.

    Args:
        args: The options.
        ids: The input scp, utterance id -> value.

    Raises:
        ValueError: naming the utterance id, or the output and the input it would overwrite.
    """
    scp = args.feats_scp or args.wav_scp
    check_utt_ids(ids, scp)
    output_dir = Path(args.output_dir)
    audio = [] if args.feats_scp else audio_input_files(ids.values())  # ark offsets stripped, pipes skipped
    inputs = [scp, args.origin_scp, args.key_file, args.feats_contract, args.model_file, args.train_config, *audio]
    check_output_dir_not_data_dir(output_dir, [scp, args.origin_scp])
    check_outputs_not_inputs([output_dir / "wav.scp", output_dir / "timing.json"], inputs, what="--output_dir")
    # wav/ is replaced (stale wavs removed): never the audio directory, nor holding an input.
    wavs = [output_dir / "wav"] + [output_dir / "wav" / f"{utt}.wav" for utt in ids]
    check_outputs_not_inputs(wavs, inputs, {path.parent for path in audio}, "--output_dir")


def decode(args: argparse.Namespace) -> dict:
    """Decode every utterance; return the timing summary."""
    device = "cuda" if args.ngpu > 0 else "cpu"
    if args.ngpu > 0 and not torch.cuda.is_available():
        raise RuntimeError("--ngpu > 0 but no CUDA device is visible")
    keys = read_key_file(args.key_file)
    scp = args.feats_scp or args.wav_scp
    # Checked before any output exists: repeated ids (also across the jobs split from --origin_scp),
    # ids that cannot be file names, outputs over inputs, a key file matching nothing and a contract
    # mismatch write nothing.
    ids = read_scp(scp, "feats" if args.feats_scp else "wav")
    if args.origin_scp is not None:
        read_scp(args.origin_scp, "feats")
    check_paths(args, ids)
    if keys is not None and not keys & set(ids):
        raise ValueError(f"--key_file {args.key_file} matches none of the {len(ids)} utterances of {scp}")
    vocoder = Vocoder.from_pretrained(
        args.train_config or args.model_file,
        None if args.train_config is None else args.model_file,
        device,
        engine=args.engine,
        compile=args.compile,
        fft=args.fft_convs,
    )
    skipped: List[str] = []
    if args.feats_scp:
        origin = args.origin_scp or args.feats_scp
        _, conversion = vocoder.resolve_contract(
            origin,
            None if args.feats_contract is None else load_contract_for_scp(args.feats_contract, origin),
            assume_raw=args.assume_raw_features,
        )
        raw = ((utt, feats, None) for utt, feats in read_feats_scp(args.feats_scp, keys, origin=args.origin_scp))
        items = _good_items(raw, scp, args.skip_bad_utts, skipped)
        items = ((utt, _checked_shape(utt, feats, vocoder.n_mels)) for utt, feats in items)
        items = ((utt, conversion(feats)) for utt, feats in items)
        if args.check_feats_stats:
            head = list(islice(items, STATS_CHECK_UTTS))
            stats = [None if t is None else t.cpu().numpy() for t in (vocoder.mean, vocoder.std)]
            check_feature_statistics([f for _, f in head], *stats, origin)
            items = chain(head, items)
    else:
        items = _good_items(_wav_items(args.wav_scp, vocoder, keys), scp, args.skip_bad_utts, skipped)
    if args.backend != "pytorch":
        from espnet_hifigan.export.exporters import ExportedVocoder

        vocoder = ExportedVocoder(vocoder, args.backend)
    dtype_name = resolve_dtype(args.dtype, device)
    dtype = DTYPES[dtype_name]

    output_dir = Path(args.output_dir)
    created = not output_dir.exists()
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".decode_", dir=output_dir))
    try:
        lines: List[Tuple[str, str]] = []
        audio_sec = compute_sec = 0.0
        if args.batch_size is None:
            args.batch_size = GPU_BATCH_FRAMES if device == "cuda" else CPU_BATCH_FRAMES
        batched = args.batch_size > 0 and args.chunk_frames == 0 and args.backend == "pytorch"
        # Batching sorts by length, so every utterance is read (and checked) first.
        groups = _batches(list(items), args.batch_size) if batched else ([item] for item in items)
        for group in groups:
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            if args.chunk_frames > 0:
                wavs = [synthesise_in_chunks(vocoder, group[0][1], args.chunk_frames, dtype=dtype)]
            elif batched:
                wavs = vocoder.synthesise_batch([f for _, f in group], dtype, names=[u for u, _ in group])
            else:
                wavs = [vocoder(group[0][1], dtype=dtype)]
            if device == "cuda":
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - start
            compute_sec += elapsed
            seconds = sum(len(wav) for wav in wavs) / vocoder.fs
            audio_sec += seconds
            for (utt, feats), wav in zip(group, wavs):
                sf.write(staging / f"{utt}.wav", wav, vocoder.fs, subtype="PCM_16")
                lines.append((utt, str((output_dir / "wav" / f"{utt}.wav").resolve())))
                logging.info(f"{utt}: {feats.shape[0]} frames -> {len(wav)} samples")
            logging.info(f"{len(group)} utterance(s), {seconds:.2f} s of audio: RTF {elapsed / max(seconds, 1e-9):.4f}")
        if not lines:
            raise ValueError("no utterance was decoded (empty scp, or --key_file matched nothing)")
        wav_dir = output_dir / "wav"
        wav_dir.mkdir(exist_ok=True)
        for path in staging.iterdir():
            path.replace(wav_dir / path.name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not any(output_dir.iterdir()):
            output_dir.rmdir()  # a failed run into a new directory leaves no trace
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    device_name = torch.cuda.get_device_name() if device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    timing = dict(
        num_utts=len(lines),
        audio_sec=audio_sec,
        compute_sec=compute_sec,
        rtf=compute_sec / audio_sec,
        device=device_name,
        dtype=dtype_name,
        backend=args.backend,
        engine=args.engine,
        batch_size=args.batch_size if batched else 0,
        skipped=skipped,
    )
    if skipped:
        logging.warning(f"skipped {len(skipped)} bad utterances (--skip_bad_utts): {' '.join(skipped)}")
    position = {utt: i for i, utt in enumerate(ids)}  # wav.scp in the order of the input scp
    write_scp(output_dir / "wav.scp", sorted(lines, key=lambda line: position[line[0]]))
    (output_dir / "timing.json").write_text(json.dumps(timing, indent=2) + "\n", encoding="utf-8")
    # The new results are complete: wavs of an earlier decode that wav.scp no longer lists go.
    stale = remove_unlisted(output_dir / "wav", {f"{utt}.wav" for utt, _ in lines})
    if stale:
        logging.info(f"removed {len(stale)} wav(s) of an earlier decode that {output_dir}/wav.scp no longer lists")
    logging.info(
        f"decoded {len(lines)} utterances, {audio_sec:.2f} s of audio in {compute_sec:.2f} s: "
        f"RTF {timing['rtf']:.4f} ({1 / timing['rtf']:.1f}x real time) on {device_name}"
    )
    return timing


def main(cmd: Optional[List[str]] = None) -> None:
    """Parse options and decode; exit 1 with one error line on bad input."""
    args = get_parser().parse_args(cmd)
    if args.chunk_frames < 0:
        get_parser().error(f"--chunk_frames must be >= 0 (0: offline), got {args.chunk_frames}")
    if args.chunk_frames > 0 and args.backend != "pytorch":
        get_parser().error("--chunk_frames streams with the pytorch backend only; drop --backend or --chunk_frames")
    if args.num_threads < 0:
        get_parser().error(f"--num_threads must be >= 0 (0: torch's default), got {args.num_threads}")
    logging.basicConfig(level=args.log_level, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    set_threads(args.num_threads)
    try:
        decode(args)
    except (ContractError, ValueError, FileNotFoundError, RuntimeError, KeyError) as e:
        logging.error(str(e))
        sys.exit(1)


def console_main() -> None:
    """Console entry point ``espnet-hifigan-infer``."""
    main()


if __name__ == "__main__":
    main()
