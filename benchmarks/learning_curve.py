"""Learning curves of a vocoder experiment: held-out STOI, PESQ and mel distance per checkpoint.

``score`` synthesises the held-out sets from each ``<N>epoch.pth`` of an experiment (train with
``keep_nbest_models`` >= ``max_epoch`` so that every epoch is kept) and scores them with the
project's scorer (:func:`espnet_hifigan.evaluation.metrics.registry.score_pair`, the scoring mel of the
features' ``feats_conf.yaml``); step = epoch x ``num_iters_per_epoch``. ``plot`` draws the
curves of several experiments against steps and against minutes (steps x a measured s/step).

Examples (in a recipe directory that ran stages 1-4 and trained with the settings to compare):
    python benchmarks/learning_curve.py score --exp exp/voc_train --dump dump/raw \\
        --sets dev test --out curve.json
    python benchmarks/learning_curve.py plot --curve mini=curve.json:0.11/0.355@2000 --out curve.png
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any, Dict, List

import kaldiio
import numpy as np
import yaml

METRICS = ("stoi", "pesq", "feats_mel_l1")


def score_experiment(exp: Path, dump: Path, sets: List[str], done: List[Dict[str, Any]] = ()) -> Dict[str, Any]:
    """Scores of every epoch checkpoint of ``exp`` on ``sets`` (utterance means per set).

    ``done``: points scored before (their epochs are not scored again).

    Returns:
        dict(exp, num_iters_per_epoch, points=[dict(epoch, step, <set>: {metric: mean})]).
    """
    from espnet_hifigan.bin.voc_score import load_mel_conf
    from espnet_hifigan.evaluation.metrics.registry import ScoreOptions, score_pair
    from espnet_hifigan.evaluation.scoring import load_audio
    from espnet_hifigan.inference.vocoder import Vocoder

    config = yaml.safe_load((exp / "config.yaml").read_text())
    iters = int(config["num_iters_per_epoch"])
    data = {}
    for dset in sets:
        wavs = dict(line.split(maxsplit=1) for line in (dump / dset / "wav.scp").read_text().splitlines())
        feats = dict(kaldiio.load_scp(str(dump / dset / "feats.scp")))
        mel_conf = load_mel_conf(dump / dset / "feats_conf.yaml")
        data[dset] = (wavs, feats, ScoreOptions(mel_conf=ScoreOptions.freeze_mel_conf(mel_conf)))
    ckpts = sorted(exp.glob("*epoch.pth"), key=lambda p: int(re.match(r"(\d+)epoch", p.name).group(1)))
    points = list(done)
    for ckpt in ckpts:
        epoch = int(re.match(r"(\d+)epoch", ckpt.name).group(1))
        if any(p["epoch"] == epoch for p in points):
            continue
        vocoder = Vocoder.from_pretrained(exp, model_file=ckpt.name)
        point: Dict[str, Any] = dict(epoch=epoch, step=epoch * iters)
        for dset, (wavs, feats, options) in data.items():
            scores = []
            for utt, value in wavs.items():
                ref, fs = load_audio(utt, value.strip(), "reference")
                gen = vocoder(np.array(feats[utt]))
                scores.append(score_pair(ref, gen, fs, METRICS, options))
            point[dset] = {m: float(np.mean([s[m] for s in scores])) for m in METRICS}
        print(json.dumps(point), flush=True)
        points.append(point)
    points.sort(key=lambda p: p["epoch"])
    return dict(exp=str(exp), num_iters_per_epoch=iters, points=points)


def minutes(steps: np.ndarray, s_per_step: str) -> np.ndarray:
    """Training minutes at ``steps``: ``S`` seconds per step, or ``S1/S2@N`` (S1 up to step N, then S2).

    The second form is for a warm-up (cheap mel-only steps) followed by GAN steps.
    """
    if "@" not in s_per_step:
        return steps * float(s_per_step) / 60
    rates, switch = s_per_step.split("@")
    first, second = (float(r) for r in rates.split("/"))
    n = float(switch)
    return (np.minimum(steps, n) * first + np.maximum(steps - n, 0) * second) / 60


def plot_curves(curves: Dict[str, tuple], out: Path, dset: str) -> None:
    """Draw STOI, PESQ and mel distance of ``dset`` vs steps (top) and minutes (bottom).

    Args:
        curves: name -> (score_experiment result, seconds per step as :func:`minutes` reads it).
        out: PNG path.
        dset: Which held-out set to draw.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(13, 7), constrained_layout=True)
    for name, (curve, s_per_step) in curves.items():
        steps = np.array([p["step"] for p in curve["points"]])
        for col, metric in enumerate(METRICS):
            values = [p[dset][metric] for p in curve["points"]]
            axes[0, col].plot(steps, values, marker=".", label=name)
            axes[1, col].plot(minutes(steps, s_per_step), values, marker=".", label=name)
    labels = dict(stoi="STOI ↑", pesq="PESQ (wide-band) ↑", feats_mel_l1="mel distance (log10 feature-mel L1) ↓")
    for col, metric in enumerate(METRICS):
        axes[0, col].set_xlabel("training steps")
        axes[1, col].set_xlabel("minutes of training (steps x s/step)")
        for row in range(2):
            axes[row, col].set_ylabel(labels[metric])
            axes[row, col].grid(alpha=0.3)
    axes[1, 0].axvline(10, color="grey", linestyle="--")
    axes[0, 0].axhline(0.8, color="grey", linestyle=":")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"mini_an4 held-out '{dset}' set")
    fig.savefig(out, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    score = sub.add_parser("score", help="score every epoch checkpoint of an experiment")
    score.add_argument("--exp", type=Path, required=True)
    score.add_argument("--dump", type=Path, required=True, help="dump/raw of the recipe")
    score.add_argument("--sets", nargs="+", default=["dev", "test"])
    score.add_argument("--out", type=Path, required=True, help="JSON output (epochs already in it are kept)")
    plot = sub.add_parser("plot", help="draw curves scored by 'score'")
    plot.add_argument("--curve", action="append", required=True,
                      help="NAME=CURVE.json:SECONDS_PER_STEP, or NAME=CURVE.json:S1/S2@N (S1 s/step up "
                           "to step N, S2 after: a warm-up); repeat for each experiment")
    plot.add_argument("--set", default="test", help="held-out set drawn")
    plot.add_argument("--out", type=Path, required=True, help="PNG output")
    args = parser.parse_args()
    if args.command == "score":
        done = json.loads(args.out.read_text())["points"] if args.out.is_file() else []
        result = score_experiment(args.exp, args.dump, args.sets, done)
        args.out.write_text(json.dumps(result, indent=1))
    else:
        curves = {}
        for spec in args.curve:
            name, rest = spec.split("=", 1)
            path, s_per_step = rest.rsplit(":", 1)
            curves[name] = (json.loads(Path(path).read_text()), s_per_step)
        plot_curves(curves, args.out, args.set)


if __name__ == "__main__":
    main()
