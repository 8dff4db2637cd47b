"""Warm-start evidence: fine-tuning curves of runs that start from the same pretrained checkpoint.

Compares fine-tuning runs scored by ``benchmarks/learning_curve.py score`` (held-out STOI, PESQ,
``feats_mel_l1`` of every epoch checkpoint), e.g. (A) generator + discriminator loaded from the
checkpoint vs (B) the same generator with a fresh discriminator. Step 0 of every run is the
pretrained checkpoint itself (one point of the pretraining's curve). Scores are pooled over the
held-out sets as utterance-weighted means (the sets' sizes are read from ``DUMP/<set>/wav.scp``);
each run may have several seeds (comma-separated curves: mean drawn, seeds drawn faint). The
training logs (``<exp>/train.log``) add the validation ``loss_mel_l1`` and the training
discriminator and feature-matching losses of each epoch. docs/warmstart.md was measured with it.

Example (in the recipe directory; the curves from ``learning_curve.py score --sets dev eval1``):
    python benchmarks/warmstart_curve.py --dump dump/raw --sets dev eval1 \\
        --start pretrain.json:15 --run "A: G+D=ftA_s1.json,ftA_s2.json" \\
        --run "B: G, fresh D=ftB_s1.json,ftB_s2.json" --out warmstart.png
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

METRICS = ("stoi", "pesq", "feats_mel_l1")
LOG_KEYS = (("valid", "loss_mel_l1"), ("train", "discriminator_loss"), ("train", "generator_feat_match_loss"))
_EPOCH = re.compile(r"(\d+)epoch results: (.*)$")


def set_sizes(dump: Path, sets: Sequence[str]) -> dict[str, int]:
    """Number of utterances of each held-out set (lines of ``dump/<set>/wav.scp``)."""
    return {s: sum(1 for line in (dump / s / "wav.scp").read_text().splitlines() if line.strip()) for s in sets}


def pooled(point: dict[str, dict[str, float]], sizes: dict[str, int]) -> dict[str, float]:
    """Utterance-weighted mean of each metric over the sets of one scored checkpoint.

    Args:
        point: A point of ``learning_curve.score_experiment``: ``{set: {metric: mean}}`` (+ epoch, step).
        sizes: Utterances per set.

    Returns:
        ``{metric: pooled mean}``.
    """
    total = sum(sizes.values())
    return {m: sum(point[s][m] * n for s, n in sizes.items()) / total for m in METRICS}


def read_log(train_log: Path) -> dict[int, dict[str, float]]:
    """``{epoch: {"<part>.<key>": value}}`` of :data:`LOG_KEYS` from an ESPnet ``train.log``.

    The last ``Nepoch results`` line of each epoch wins (a resumed run repeats none, but be safe).
    """
    out: dict[int, dict[str, float]] = {}
    if not train_log.is_file():
        return out
    for line in train_log.read_text(errors="replace").splitlines():
        match = _EPOCH.search(line)
        if not match:
            continue
        values: dict[str, float] = {}
        for part, body in re.findall(r"\[(\w+)\] (.*?)(?= \[\w+\] |$)", match.group(2)):
            for key, value in re.findall(r"(\w+)=([-+0-9.e]+)", body):
                values[f"{part}.{key}"] = float(value)
        out[int(match.group(1))] = {f"{p}.{k}": values.get(f"{p}.{k}", float("nan")) for p, k in LOG_KEYS}
    return out


def run_table(curves: list[dict], start: dict[str, float], sizes: dict[str, int]) -> dict[int, list[dict[str, float]]]:
    """``{step: [values of each seed]}`` of one run: pooled scores + log values; step 0 = ``start``."""
    table: dict[int, list[dict[str, float]]] = {0: [dict(start) for _ in curves]}
    for curve in curves:
        log = read_log(Path(curve["exp"]) / "train.log")
        for point in curve["points"]:
            values = pooled(point, sizes)
            values.update(log.get(point["epoch"], {}))
            table.setdefault(point["step"], []).append(values)
    return table


def mean_of(rows: list[dict[str, float]], key: str) -> float:
    """Mean over seeds (NaN where a seed lacks ``key``)."""
    return float(np.mean([r.get(key, float("nan")) for r in rows]))


def markdown(tables: dict[str, dict[int, list[dict[str, float]]]]) -> str:
    """The table of docs/warmstart.md: per step, each run's STOI / feats_mel_l1 / PESQ (seed means)
    and its seeds' range of STOI and feats_mel_l1."""
    names = list(tables)
    header = "| step | " + " | ".join(f"{n}: STOI / mel / PESQ" for n in names) + " |"
    lines = [header, "| ---: |" + " --- |" * len(names)]
    steps = sorted(set().union(*(t.keys() for t in tables.values())))
    for step in steps:
        cells = []
        for name in names:
            rows = tables[name].get(step, [])
            if not rows:
                cells.append("")
                continue
            cell = " / ".join(f"{mean_of(rows, m):.3f}" for m in ("stoi", "feats_mel_l1", "pesq"))
            if len(rows) > 1:
                stoi = [r["stoi"] for r in rows]
                mel = [r["feats_mel_l1"] for r in rows]
                cell += f" (seeds {min(stoi):.3f}-{max(stoi):.3f}, {min(mel):.3f}-{max(mel):.3f})"
            cells.append(cell)
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(tables: dict[str, dict[int, list[dict[str, float]]]], out: Path, title: str) -> None:
    """Held-out STOI and mel distance, validation loss mel, training discriminator and
    feature-matching losses vs fine-tuning step (seed means; seeds faint)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (
        ("stoi", "held-out STOI ↑"),
        ("feats_mel_l1", "held-out mel distance (feats_mel_l1) ↓"),
        ("valid.loss_mel_l1", "validation loss_mel_l1 (dev, full utts) ↓"),
        ("train.discriminator_loss", "training discriminator loss (epoch mean)"),
        ("train.generator_feat_match_loss", "training feature-matching loss (epoch mean)"),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(21, 4.2), constrained_layout=True)
    for index, (name, table) in enumerate(tables.items()):
        color = f"C{index}"
        steps = sorted(table)
        for ax, (key, label) in zip(axes, panels):
            seeds = max(len(table[s]) for s in steps)
            for seed in range(seeds if seeds > 1 else 0):
                xs = [s for s in steps if seed < len(table[s]) and key in table[s][seed]]
                ax.plot(xs, [table[s][seed][key] for s in xs], color=color, alpha=0.3, linewidth=0.8)
            xs = [s for s in steps if not np.isnan(mean_of(table[s], key))]
            ax.plot(xs, [mean_of(table[s], key) for s in xs], color=color, marker=".", label=name)
            ax.set_xlabel("fine-tuning steps")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.savefig(out, dpi=90)


def main(argv: list[str] | None = None) -> None:
    """Print the markdown table and draw the figure."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dump", type=Path, required=True, help="dump/raw of the recipe (set sizes)")
    parser.add_argument("--sets", nargs="+", required=True, help="held-out sets, pooled")
    parser.add_argument("--start", required=True, help="CURVE.json:EPOCH: the pretrained checkpoint's point (step 0)")
    parser.add_argument("--run", action="append", required=True, help="NAME=CURVE.json[,CURVE.json...] (seeds)")
    parser.add_argument("--title", default="fine-tuning from a pretrained checkpoint (ljspeech_mini, held-out dev+eval1)")
    parser.add_argument("--out", type=Path, required=True, help="PNG output")
    args = parser.parse_args(argv)
    sizes = set_sizes(args.dump, args.sets)
    start_path, start_epoch = args.start.rsplit(":", 1)
    start_curve = json.loads(Path(start_path).read_text())
    start_point = next(p for p in start_curve["points"] if p["epoch"] == int(start_epoch))
    start = pooled(start_point, sizes)
    start.update(read_log(Path(start_curve["exp"]) / "train.log").get(int(start_epoch), {}))
    for key in ("train.discriminator_loss", "train.generator_feat_match_loss"):
        start.pop(key, None)  # the pretraining's, not a fine-tuning value
    tables = {}
    for spec in args.run:
        name, paths = spec.split("=", 1)
        tables[name] = run_table([json.loads(Path(p).read_text()) for p in paths.split(",")], start, sizes)
    print(markdown(tables))
    plot(tables, args.out, args.title)


if __name__ == "__main__":
    main()
