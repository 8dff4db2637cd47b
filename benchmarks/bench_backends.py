"""Times real time of the decode backends: PyTorch vs onnxruntime vs TorchScript, on CPU.

A vocoder with the official V1 generator (random weights) and 22.05 kHz features is exported with
:func:`espnet_hifigan.export.exporters.export_vocoder`; then one utterance is synthesised by each backend in
turn (interleaved repetitions in one process, so that machine load affects all alike) through the
call a user makes: ``Vocoder.__call__``, ``OnnxVocoder.__call__``, the TorchScript module.

Example:
    python benchmarks/bench_backends.py --preset v1 --seconds 10 --threads 2 --repeats 3
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
import onnxruntime
import torch
import yaml

from espnet_hifigan.export.exporters import FILE_NAMES, export_vocoder
from espnet_hifigan.export.onnx_vocoder import OnnxVocoder
from espnet_hifigan.inference.vocoder import Vocoder
from espnet_hifigan.nets.generator import HiFiGANGenerator
from espnet_hifigan.nets.presets import GENERATOR_PRESETS

REPO_ROOT = Path(__file__).resolve().parents[1]


def build_vocoder(preset: str, fs: int) -> Vocoder:
    """Debug-config features at ``fs`` with the ``preset`` generator (random weights, GlobalMVN stats)."""
    config = yaml.safe_load((REPO_ROOT / "conf" / "hifigan_debug.yaml").read_text())
    config["feats_extract_conf"]["fs"] = fs
    config["generator_conf"] = dict(GENERATOR_PRESETS[preset])
    config["normalize_conf"] = {}
    generator = HiFiGANGenerator(in_channels=config["feats_extract_conf"]["n_mels"], **config["generator_conf"])
    state = {f"generator.{k}": v for k, v in generator.state_dict().items()}
    state["normalize.mean"] = torch.full((generator.conv_pre.in_channels,), -4.0)
    state["normalize.std"] = torch.full((generator.conv_pre.in_channels,), 1.5)
    return Vocoder(config, state, source=f"random {preset}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="v1", choices=sorted(GENERATOR_PRESETS))
    parser.add_argument("--seconds", type=float, default=10.0, help="utterance length")
    parser.add_argument("--fs", type=int, default=22050)
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads of every backend")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (after one warm-up round)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    vocoder = build_vocoder(args.preset, args.fs)
    frames = int(args.seconds * args.fs / vocoder.hop_length)
    mel = (np.random.default_rng(0).standard_normal((frames, vocoder.n_mels)) * 1.5 - 4.0).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        export_vocoder(vocoder, tmp)
        export_sec = time.perf_counter() - start
        onnx = OnnxVocoder(tmp, num_threads=args.threads)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, still shipped
            script = torch.jit.load(str(Path(tmp) / FILE_NAMES["torchscript"])).eval()

        def run_script(x: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return script(torch.from_numpy(x)[None])[0].numpy()

        backends: Dict[str, Callable[[np.ndarray], np.ndarray]] = {
            "pytorch": vocoder,
            "onnxruntime": onnx,
            "torchscript": run_script,
        }
        for fn in backends.values():  # warm-up on 1 s
            fn(mel[: int(args.fs / vocoder.hop_length)])
        timings: Dict[str, List[float]] = {name: [] for name in backends}
        outputs: Dict[str, np.ndarray] = {}
        for _ in range(args.repeats):
            for name, fn in backends.items():
                start = time.perf_counter()
                outputs[name] = fn(mel)
                timings[name].append(time.perf_counter() - start)
        max_diff = {name: float(np.abs(wav - outputs["pytorch"]).max()) for name, wav in outputs.items()}

    audio = frames * vocoder.hop_length / args.fs
    print(
        f"{args.preset} generator, {audio:.2f} s utterance at {args.fs} Hz, batch 1, float32, CPU, "
        f"{args.threads} threads, best and median of {args.repeats} interleaved runs "
        f"(torch {torch.__version__}, onnxruntime {onnxruntime.__version__}); export of both formats {export_sec:.1f} s"
    )
    print("| backend | best (s) | median (s) | x real time (best) | max abs diff vs pytorch |")
    print("| --- | --- | --- | --- | --- |")
    for name, values in timings.items():
        best, median = min(values), float(np.median(values))
        print(f"| {name} | {best:.3f} | {median:.3f} | {audio / best:.2f} | {max_diff[name]:.1e} |")


if __name__ == "__main__":
    main()
