"""benchmarks/warmstart_curve.py: pooling over held-out sets, train.log parsing, the table and figure."""

from __future__ import annotations

import json

import pytest

from benchmarks.warmstart_curve import main, pooled, read_log

LOG = (
    "[vm] 2026-12-05 01:44:28,001 (trainer:392) INFO: 1epoch results: [train] iter_time=0.038, "
    "discriminator_loss=3.275, generator_feat_match_loss=0.262, generator_mel_loss=0.554, "
    "time=56.52 seconds, total_count=50, [valid] discriminator_loss=3.1e+07, loss_mel_l1=0.567, "
    "mrstft=2.004, time=0.61 seconds, total_count=1, [att_plot] time=4.42 seconds, total_count=0\n"
    "[vm] 2026-12-05 01:45:28,001 (trainer:392) INFO: 2epoch results: [train] discriminator_loss=2.529, "
    "generator_feat_match_loss=0.390, time=1 minute and 25.51 seconds, [valid] loss_mel_l1=0.580\n"
)


def _point(epoch, dev, test):
    return {"epoch": epoch, "step": epoch * 50,
            "dev": {"stoi": dev, "pesq": 1.0, "feats_mel_l1": dev / 2},
            "test": {"stoi": test, "pesq": 1.0, "feats_mel_l1": test / 2}}


def test_pooled_weights_sets_by_utterances():
    # 1 dev utterance at 0.9, 3 test utterances at 0.5: the pooled mean is (0.9 + 3 * 0.5) / 4 = 0.6.
    assert pooled(_point(1, 0.9, 0.5), {"dev": 1, "test": 3})["stoi"] == pytest.approx(0.6)


def test_read_log_takes_train_and_valid_values_of_each_epoch(tmp_path):
    (tmp_path / "train.log").write_text(LOG)
    log = read_log(tmp_path / "train.log")
    assert log[1] == {"valid.loss_mel_l1": 0.567, "train.discriminator_loss": 3.275,
                      "train.generator_feat_match_loss": 0.262}
    assert log[2]["train.discriminator_loss"] == 2.529 and log[2]["valid.loss_mel_l1"] == 0.580
    assert read_log(tmp_path / "missing.log") == {}


def test_main_prints_step_zero_from_the_start_and_seed_means(tmp_path, capsys):
    dump = tmp_path / "dump"
    for name, n in (("dev", 1), ("test", 3)):
        (dump / name).mkdir(parents=True)
        (dump / name / "wav.scp").write_text("".join(f"u{i} /x/u{i}.wav\n" for i in range(n)))
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "train.log").write_text(LOG)
    start = tmp_path / "start.json"
    start.write_text(json.dumps({"exp": str(exp), "points": [_point(13, 0.8, 0.8)]}))
    seeds = []
    for seed, value in enumerate((0.82, 0.86)):
        path = tmp_path / f"run{seed}.json"
        path.write_text(json.dumps({"exp": str(exp), "points": [_point(1, value, value)]}))
        seeds.append(str(path))
    out = tmp_path / "curve.png"
    main(["--dump", str(dump), "--sets", "dev", "test", "--start", f"{start}:13",
          "--run", f"A={','.join(seeds)}", "--out", str(out)])
    table = capsys.readouterr().out.splitlines()
    assert table[2].startswith("| 0 | 0.800 / 0.400 / 1.000")
    assert table[3].startswith("| 50 | 0.840 / 0.420 / 1.000 (seeds 0.820-0.860, 0.410-0.430)")
    assert out.stat().st_size > 0
