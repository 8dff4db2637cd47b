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
from espnet_hifigan.core.scp import read_scp, write_scp
from espnet_hifigan.inference.text_to_wav import DEFAULT_TTS_MODEL_FILE, TextToWav

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
    """``(utt, text)`` pairs; utterance ids become file names."""
    texts = list(read_scp(text_file, "text").items())
    for utt, _ in texts:
        if "/" in utt or utt.startswith("."):
            raise ValueError(f"{text_file}: utterance id {utt!r} cannot be a file name (no '/', no leading '.')")
    return texts


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
    if args.text is not None:
        wav = tts(args.text, **speaker)
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
