"""Say sentences with an ESPnet tts1 experiment and our vocoder: text in, wav out.

ESPnet's ``Text2Speech`` makes the mel (no vocoder), :class:`espnet_hifigan.inference.vocoder.Vocoder` the
audio (:class:`espnet_hifigan.inference.text_to_wav.TextToWav`). The TTS's feature contract (its ``config.yaml``)
is checked against the vocoder's before the TTS is loaded: any difference stops with the table of
the differing fields, exit 1, nothing written. Normalised TTS mels are de-normalised with the
TTS's own statistics.

One sentence: ``--text "..." --output out.wav``. A list: ``--text_file`` with ``<utt> <text>``
lines writes ``<output_dir>/wav/<utt>.wav`` and ``<output_dir>/wav.scp``, all or nothing (staged
in a temporary directory and moved into place once every utterance is synthesised). Wavs are
16-bit PCM at the TTS's sampling rate.

Refused before anything is synthesised (exit 1, nothing written): a ``--text_file`` line of one
field (``file:line`` named), and a text that is empty or has no token in the TTS's token list
(all ``<unk>``: ``--text`` or the line named). Outputs shorter than
:data:`~espnet_hifigan.inference.text_to_wav.SHORT_OUTPUT_FRAMES` frames (a TTS that stopped at
once) are written, each warned about, and listed at the end.

The TTS config's relative paths (token list, statistics) hold from ``--tts_recipe_dir``
(default: two levels above ``--tts_exp``, i.e. ``egs2/<corpus>/tts1``).

Example:
    espnet-hifigan-tts --tts_exp ../tts1/exp/tts_train_tacotron2_raw_phn \\
        --vocoder exp/hifigan/packed/model.zip --text "Hello world." --output hello.wav
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from pathlib import Path
from typing import List, Optional, Tuple

import soundfile as sf
import torch

from espnet_hifigan.contract import ContractError
from espnet_hifigan.core.safety import (
    check_output_dir_not_data_dir,
    check_outputs_not_inputs,
    check_utt_ids,
    input_files,
)
from espnet_hifigan.core.scp import read_scp, write_scp
from espnet_hifigan.inference.text_to_wav import DEFAULT_TTS_MODEL_FILE, SHORT_OUTPUT_FRAMES, TextToWav

# Exit status on a contract mismatch or any unusable input.
EXIT_ERROR = 1
WAV_SUBTYPE = "PCM_16"


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tts_exp", required=True, type=Path, help="ESPnet tts1 experiment directory (config.yaml)")
    parser.add_argument(
        "--tts_model_file", default=None,
        help=f"TTS checkpoint: a path or a name inside --tts_exp (default: {DEFAULT_TTS_MODEL_FILE})",
    )
    parser.add_argument(
        "--tts_recipe_dir", type=Path, default=None,
        help="where the TTS config's relative paths hold (default: two levels above --tts_exp)",
    )
    parser.add_argument("--vocoder", required=True, type=Path, help="packed model.zip or vocoder experiment directory")
    parser.add_argument("--vocoder_model_file", default=None, help="checkpoint name in a vocoder experiment directory")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="one sentence (with --output)")
    src.add_argument("--text_file", type=Path, help="'<utt> <text>' lines (with --output_dir)")
    parser.add_argument("--output", type=Path, default=None, help="wav file for --text")
    parser.add_argument("--output_dir", type=Path, default=None, help="wav/ and wav.scp for --text_file")
    parser.add_argument("--spembs", type=Path, default=None, help="speaker embedding (x-vector .npy) for every sentence")
    parser.add_argument("--sids", type=int, default=None, help="speaker id of a multi-speaker TTS")
    parser.add_argument("--lids", type=int, default=None, help="language id of a multilingual TTS")
    parser.add_argument("--maxlenratio", type=float, default=10.0, help="autoregressive TTS: max output/input length")
    parser.add_argument("--minlenratio", type=float, default=0.0, help="autoregressive TTS: min output/input length")
    parser.add_argument("--seed", type=int, default=None, help="fix the random seed before every sentence")
    parser.add_argument("--ngpu", type=int, default=0, help="0: CPU, 1: the first visible GPU")
    parser.add_argument("--log_level", default="INFO")
    return parser


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.text is not None and args.output is None:
        parser.error("--text needs --output")
    if args.text_file is not None and args.output_dir is None:
        parser.error("--text_file needs --output_dir")


def _read_texts(text_file: Path) -> List[Tuple[str, str]]:
    """``(utt, text)`` pairs; utterance ids become file names.

    Raises:
        ValueError: a line of one field (an id without text, or a sentence without an id whose
            first word would become the id), naming ``file:line``.
    """
    lines = text_file.read_text(encoding="utf-8").splitlines() if text_file.is_file() else []
    for lineno, line in enumerate(lines, 1):
        if len(line.split()) == 1:
            raise ValueError(f"{text_file}:{lineno}: {line.strip()!r} is one field; expected '<utt> <text>' (an "
                             "utterance id, then the sentence)")
    texts = list(read_scp(text_file, "text").items())
    check_utt_ids((utt for utt, _ in texts), text_file)
    return texts


def _check_texts(tts: TextToWav, texts: List[Tuple[str, str]], text_file: Optional[Path]) -> None:
    """Refuse, before anything is synthesised, a text that is empty or has no token the TTS knows.

    Raises:
        ValueError: naming ``--text`` or the ``--text_file`` line and utterance.
    """
    for utt, text in texts:
        problem = tts.text_problem(text)
        if problem is not None and text_file is None:
            raise ValueError(f"--text: {problem}; nothing written")
        if problem is not None:
            lineno = next(n for n, line in enumerate(text_file.read_text(encoding="utf-8").splitlines(), 1)
                          if line.split(maxsplit=1)[:1] == [utt])
            raise ValueError(f"{text_file}:{lineno}: utterance {utt}: {problem}; nothing written")


def _short(utt: str, wav, tts: TextToWav, short: List[str]) -> None:
    """Warn about (and collect) an output shorter than :data:`SHORT_OUTPUT_FRAMES` frames."""
    frames = len(wav) // tts.vocoder.hop_length
    if frames < SHORT_OUTPUT_FRAMES:
        short.append(utt)
        logging.warning(f"{utt or 'the output'}: {frames} frame(s), {len(wav) / tts.fs:.3f} s: shorter than any spoken "
                        "word; the TTS stopped at once (attention failure? --maxlenratio/--minlenratio?)")


def _write_wav_atomic(path: Path, wav, fs: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix or '.wav'}")
    try:
        sf.write(tmp, wav, fs, subtype=WAV_SUBTYPE, format="WAV")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def synthesise(args: argparse.Namespace) -> int:
    """Build the pipeline (contract checked first), synthesise and write; return how many wavs."""
    if args.ngpu > 0 and not torch.cuda.is_available():
        raise RuntimeError("--ngpu > 0 but no CUDA device is visible")
    texts = [("", args.text)] if args.text is not None else _read_texts(args.text_file)
    if args.text is not None:
        outputs, what = [args.output], "--output"
    else:
        outputs = [args.output_dir / "wav.scp"] + [args.output_dir / "wav" / f"{utt}.wav" for utt, _ in texts]
        what = "--output_dir"
        check_output_dir_not_data_dir(args.output_dir, [args.text_file])
    inputs = input_files(args.tts_exp, args.tts_model_file, args.vocoder) + [args.text_file, args.spembs]
    check_outputs_not_inputs(outputs, inputs, what=what)
    kwargs = dict(maxlenratio=args.maxlenratio, minlenratio=args.minlenratio)
    if args.seed is not None:
        kwargs.update(seed=args.seed, always_fix_seed=True)
    tts = TextToWav(
        args.tts_exp,
        args.vocoder,
        tts_model_file=args.tts_model_file,
        tts_recipe_dir=args.tts_recipe_dir,
        vocoder_model_file=args.vocoder_model_file,
        device="cuda" if args.ngpu > 0 else "cpu",
        **kwargs,
    )
    speaker = dict(sids=args.sids, spembs=args.spembs, lids=args.lids)
    _check_texts(tts, texts, args.text_file)
    short: List[str] = []
    if args.text is not None:
        wav = tts(args.text, **speaker)
        _short("", wav, tts, short)
        _write_wav_atomic(args.output, wav, tts.fs)
        logging.info(f"wrote {args.output}: {len(wav) / tts.fs:.2f} s")
        return 1

    output_dir = args.output_dir
    created = not output_dir.exists()
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tts_", dir=output_dir))
    try:
        lines = []
        for utt, text in texts:
            try:
                wav = tts(text, **speaker)
            except (RuntimeError, ValueError) as e:
                raise RuntimeError(f"{args.text_file}: utterance {utt}: {e}") from e
            _short(utt, wav, tts, short)
            sf.write(staging / f"{utt}.wav", wav, tts.fs, subtype=WAV_SUBTYPE)
            lines.append((utt, str((output_dir / "wav" / f"{utt}.wav").resolve())))
            logging.info(f"{utt}: {len(wav) / tts.fs:.2f} s")
        wav_dir = output_dir / "wav"
        wav_dir.mkdir(exist_ok=True)
        for path in staging.iterdir():
            path.replace(wav_dir / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not any(output_dir.iterdir()):
            output_dir.rmdir()  # a failure leaves no trace
    write_scp(output_dir / "wav.scp", lines)
    logging.info(f"wrote {len(lines)} wavs to {output_dir / 'wav'} and {output_dir / 'wav.scp'}")
    if short:
        logging.warning(f"{len(short)} of {len(lines)} outputs are shorter than {SHORT_OUTPUT_FRAMES} frames: "
                        f"{' '.join(short)}")
    return len(lines)


def main(cmd: Optional[List[str]] = None) -> int:
    """Parse options and synthesise; return the exit status (1 with one error message on bad input)."""
    parser = get_parser()
    args = parser.parse_args(cmd)
    _check_args(parser, args)
    logging.basicConfig(level=args.log_level, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    try:
        synthesise(args)
    except (ContractError, ValueError, FileNotFoundError, RuntimeError, KeyError) as e:
        logging.error(str(e))
        return EXIT_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
