"""Shared fixtures: small real or synthetic speech corpora written to a temp dir."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO_ROOT = Path(__file__).resolve().parents[1]
LJSPEECH_MINI = REPO_ROOT.parent / "shared" / "data" / "ljspeech_mini"


def _synthetic_utterance(rng: np.random.Generator, fs: int, seconds: float) -> np.ndarray:
    """A voiced-speech-like signal: harmonics of a gliding f0 with an amplitude envelope."""
    t = np.arange(int(fs * seconds)) / fs
    f0 = 110 + 40 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, np.pi))
    phase = 2 * np.pi * np.cumsum(f0) / fs
    wav = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 2.3 * t))
    return (0.2 * envelope * wav + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="session")
def synthetic_corpus(tmp_path_factory) -> dict:
    """Six 16 kHz utterances; returns dict(fs, train_scp, valid_scp, dir)."""
    root = tmp_path_factory.mktemp("synthetic_corpus")
    rng = np.random.default_rng(0)
    fs = 16000
    lines = []
    for i in range(6):
        path = root / f"utt{i}.wav"
        sf.write(path, _synthetic_utterance(rng, fs, 0.8 + 0.2 * i), fs)
        lines.append(f"utt{i} {path}\n")
    (root / "train.scp").write_text("".join(lines[:4]))
    (root / "valid.scp").write_text("".join(lines[4:]))
    return dict(fs=fs, train_scp=root / "train.scp", valid_scp=root / "valid.scp", dir=root)


@pytest.fixture(scope="session")
def ljspeech_mini() -> Path:
    """The shared 24-utterance LJSpeech subset (skips when absent, as for our users)."""
    if not (LJSPEECH_MINI / "wavs").is_dir():
        pytest.skip(f"{LJSPEECH_MINI} is absent (it is only in the developers' shared data)")
    return LJSPEECH_MINI


@pytest.fixture
def parallel_wavegan(monkeypatch):
    """The real ``parallel_wavegan`` package; the test is skipped, saying why, when it does not import.

    0.6.1 imports ``scipy.signal.kaiser``, which scipy 1.13 removed: it is put back for the test.
    """
    import scipy.signal
    import scipy.signal.windows

    monkeypatch.setattr(scipy.signal, "kaiser", scipy.signal.windows.kaiser, raising=False)
    try:
        import parallel_wavegan.models
        import parallel_wavegan.utils  # noqa: F401
    except ImportError as e:
        pytest.skip(f"parallel_wavegan does not import ({e}); it installs with "
                    "pip install --no-build-isolation parallel_wavegan")
    return parallel_wavegan


@pytest.fixture(scope="session")
def tts_recipe(tmp_path_factory) -> Path:
    """voc1 (debug vocoder ``exp/voc_debug``) next to tts1 (tiny trained Tacotron 2 ``exp/tts_tiny``).

    Built once per test session by ``tests/tts_recipe.py`` (for all pytest-xdist workers; skips
    when the espnet wheel lacks the AN4 sample); each worker gets its own copy of both
    directories. Returns the voc1 directory.
    """
    import shutil

    from mini_an4 import built_once
    from tts_recipe import an4_tarball, build_recipe

    if not an4_tarball().is_file():
        pytest.skip(f"the AN4 sample {an4_tarball()} is not in this espnet installation")
    built = built_once(_session_root(tmp_path_factory), "tts_recipe", lambda parent: dict(root=build_recipe(parent)))
    copy = tmp_path_factory.mktemp("chain")
    for name in ("voc1", "tts1"):
        shutil.copytree(built["root"].parent / name, copy / name, symlinks=True)
    return copy / "voc1"


@pytest.fixture(scope="session")
def sensitive_vocoder(tts_recipe) -> Path:
    """A packed vocoder with the TTS's features whose output follows its input (``exp/voc_sensitive``)."""
    from tts_recipe import pack_sensitive_vocoder

    return pack_sensitive_vocoder(tts_recipe, tts_recipe / "exp/voc_sensitive/model.zip")


def _session_root(tmp_path_factory) -> Path:
    """The test session's temporary root (under pytest-xdist: shared by all workers)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def prepared_mini_an4(tmp_path_factory) -> dict:
    """mini_an4 through stages 1-4 (``--fast``), once per session: dict(root, output). Copy it with
    ``mini_an4.copy_prepared`` before running later stages or changing anything."""
    from mini_an4 import built_once, prepare

    return built_once(_session_root(tmp_path_factory), "mini_an4_prepared", prepare)


@pytest.fixture(scope="session")
def trained_mini_an4(prepared_mini_an4, tmp_path_factory) -> dict:
    """mini_an4 through stages 1-8 (``--fast``: the debug config), once per session:
    dict(root, output) with the output of all eight stages. Copy it before changing anything."""
    from mini_an4 import built_once, train_prepared

    return built_once(
        _session_root(tmp_path_factory), "mini_an4_trained", lambda parent: train_prepared(prepared_mini_an4, parent)
    )


def pytest_configure(config) -> None:
    """Register the project's markers; one torch thread per pytest-xdist worker (the workers share
    the CPUs: torch's default of one thread per CPU in each would oversubscribe them)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)
    config.addinivalue_line("markers", "slurm: needs a real SLURM (tools/slurm/setup_local_slurm.sh)")
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (pytest -m gpu; benchmarks/gpu_session.sh runs them)")


def pytest_runtest_logreport(report) -> None:
    """With ESPNET_HIFIGAN_GPU_REPORT=dir (benchmarks/gpu_session.sh), append each failure's
    report to dir/failures.txt as it happens: a session stopped by its time limit keeps them."""
    out = os.environ.get("ESPNET_HIFIGAN_GPU_REPORT")
    if out and report.failed:
        with open(os.path.join(out, "failures.txt"), "a", encoding="utf-8") as f:
            f.write(f"==== {report.nodeid} ({report.when}, {report.duration:.1f} s)\n{report.longreprtext}\n")


# The longest modules first (measured on 2 cores), so that pytest-xdist's workers (test.sh runs
# two) finish together instead of one waiting for a long module handed out last. The recipe
# stages build the shared mini_an4 runs while the other worker trains the tiny TTS of test_chain.
LONG_MODULES = (
    "robustness/test_recipe_stages.py",
    "test_chain.py",
    "test_slurm.py",
    "test_recipe.py",
    "test_learning.py",
    "test_fast_training.py",
    "test_cli.py",
    "robustness/test_checkpoints.py",
    "robustness/test_trust_refused.py",
    "robustness/test_training_data.py",
    "test_benchmarks.py",
)


def pytest_collection_modifyitems(config, items) -> None:
    """Order the modules: :data:`LONG_MODULES` first, in that order, then the rest as collected."""

    def rank(item) -> int:
        path = str(item.path).replace(os.sep, "/")
        return next((i for i, name in enumerate(LONG_MODULES) if path.endswith("tests/" + name)), len(LONG_MODULES))

    items.sort(key=rank)  # stable: the order within a module is kept
