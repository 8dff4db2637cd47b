"""Export a vocoder to ONNX and/or TorchScript (raw log-mel in, waveform out; normalisation folded).

Writes into ``--outdir``: ``vocoder.onnx`` and/or ``vocoder.torchscript.pt``, ``export.yaml``
(fs, hop length, n_mels, input/output layout) and ``feature_contract.yaml`` (which mels to feed).
Every export is checked against the PyTorch vocoder before it is moved into place; on any error
nothing is written (exit 1). Run the ONNX file without torch with
``espnet_hifigan.export.onnx_vocoder.OnnxVocoder``, or decode with ``voc_inference --backend onnxruntime``.

Example:
    python -m espnet_hifigan.bin.export --model exp/hifigan/packed/model.zip \\
        --outdir exp/hifigan/packed --formats onnx,torchscript

``--formats onnx_stream`` adds ``vocoder_stream.onnx``: one step of stateful streaming
(``--stream_chunk_frames`` frames, the caches as explicit inputs/outputs, the protocol in
``export.yaml``'s ``stream`` section), run by ``OnnxVocoder.stream``; it brings ``onnx`` along.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from espnet_hifigan.core.safety import check_outputs_not_inputs, input_files
from espnet_hifigan.export.exporters import DEFAULT_FORMATS, FILE_NAMES, FORMATS, parse_formats
from espnet_hifigan.export.stream_export import DEFAULT_CHUNK_FRAMES


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model",
        required=True,
        help="What Vocoder.from_pretrained reads: packed model.zip, experiment dir, config.yaml (with "
        "--model_file), ParallelWaveGAN .pkl, official g_* checkpoint",
    )
    parser.add_argument("--model_file", default=None, help="Checkpoint of a config.yaml, or its name in an experiment dir")
    parser.add_argument("--outdir", required=True, help="Where the exported files go (other files in it are kept)")
    parser.add_argument(
        "--formats",
        default=",".join(DEFAULT_FORMATS),
        help=f"Comma- or space-separated, of: {', '.join(FORMATS)} "
        f"(default: {','.join(DEFAULT_FORMATS)}; "
        "onnx_stream: the streaming step with its caches as inputs/outputs, run by OnnxVocoder.stream)",
    )
    parser.add_argument(
        "--stream_chunk_frames",
        type=int,
        default=DEFAULT_CHUNK_FRAMES,
        help="frames per step of the onnx_stream graph (latency: these + the look-ahead)",
    )
    parser.add_argument("--log_level", default="INFO")
    return parser


def main(cmd: Optional[List[str]] = None) -> None:
    """Export; exit 1 with one error line (nothing written) on bad input."""
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level=args.log_level, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    try:
        formats = parse_formats(args.formats)
        if args.stream_chunk_frames < 1:
            raise ValueError(f"--stream_chunk_frames must be >= 1, got {args.stream_chunk_frames}")
        outputs = [Path(args.outdir) / name for name in FILE_NAMES.values()]
        check_outputs_not_inputs(outputs, input_files(args.model, args.model_file), what="--outdir")
        from espnet_hifigan.export.exporters import export_vocoder
        from espnet_hifigan.inference.vocoder import Vocoder

        try:
            vocoder = Vocoder.from_pretrained(args.model, args.model_file)
        except Exception as e:  # noqa: BLE001 - any unreadable model: one line naming the file
            raise ValueError(
                f"cannot load a vocoder from {args.model}: {e} (give a packed model.zip, an experiment "
                "directory, a config.yaml with --model_file, a ParallelWaveGAN .pkl or an official g_* checkpoint)"
            ) from e
        paths = export_vocoder(vocoder, args.outdir, formats, stream_chunk_frames=args.stream_chunk_frames)
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as e:
        logging.error(str(e))
        sys.exit(1)
    for name, path in paths.items():
        logging.info(f"{name}: {path} ({Path(path).stat().st_size / 1e6:.1f} MB)")


def console_main() -> None:
    """Console entry point ``espnet-hifigan-export``."""
    main()


if __name__ == "__main__":
    main()
