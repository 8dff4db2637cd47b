"""The onnxruntime-only install: numpy, onnxruntime and PyYAML, the package with ``--no-deps``.

README "Runtime install without torch": ``OnnxVocoder`` (with the export directory, the feature
contract, npy feature scps) must work where torch, kaldiio, ESPnet and scipy are not installed.
``runtime_env`` builds that environment for real, once per module: a fresh venv without system
site packages, the three packages from the registry (the full install's versions, so pip reuses
its cached wheels), a wheel of this checkout installed with ``--no-deps``. A test of the runtime
is one more function calling :meth:`RuntimeEnv.run` (a Python snippet run in that venv).
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_export import DEBUG_CONFIG, PARITY_ATOL, _mels, _vocoder

from espnet_hifigan.contract import CONTRACT_FILE, Normalization
from espnet_hifigan.core.scp import write_scp
from espnet_hifigan.export.exporters import export_vocoder
from espnet_hifigan.export.onnx_vocoder import OnnxVocoder

REPO_ROOT = Path(__file__).resolve().parents[1]
# What the runtime installs (distribution names), and what must stay out of it.
RUNTIME_PACKAGES = ("numpy", "onnxruntime", "PyYAML")
HEAVY = ("torch", "torchaudio", "kaldiio", "espnet", "espnet2", "scipy", "soundfile")
PIP_QUIET = ("--no-input", "--disable-pip-version-check", "--quiet")
# pip's words when neither the registry nor its cache has a package.
UNREACHABLE = ("from versions: none", "NewConnectionError", "Network is unreachable", "name resolution")


def _clean_env() -> dict[str, str]:
    """This process's environment without anything that would reach the full install or the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _pip(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """The full install's pip (``--python`` targets another environment)."""
    return subprocess.run(
        [sys.executable, "-m", "pip", *PIP_QUIET, *args],
        capture_output=True, text=True, env=_clean_env(), timeout=timeout, check=False,
    )


@dataclass
class RuntimeEnv:
    """A venv holding only numpy, onnxruntime, PyYAML and espnet_hifigan.

    Attributes:
        python: Its interpreter.
        workdir: The snippets' working directory (outside the checkout, so that the installed
            package is the one imported).
    """

    python: Path
    workdir: Path

    def run(self, code: str, timeout: float = 120) -> str:
        """Run ``code`` with the venv's interpreter (``python -c``); its stdout.

        Raises:
            AssertionError: the snippet exited non-zero (its stderr is the message).
        """
        done = subprocess.run(
            [str(self.python), "-c", code],
            cwd=self.workdir, env=_clean_env(), capture_output=True, text=True, timeout=timeout, check=False,
        )
        assert done.returncode == 0, f"in the runtime venv:\n{done.stderr[-4000:]}"
        return done.stdout


@pytest.fixture(scope="module")
def runtime_env(tmp_path_factory) -> RuntimeEnv:
    """The runtime install, built as README documents it (skips only when pip can reach no wheel)."""
    root = tmp_path_factory.mktemp("runtime_env")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, env=_clean_env())
    python = venv / "bin" / "python"
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in RUNTIME_PACKAGES]
    try:
        done = _pip("--python", str(python), "install", *pins, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.skip(f"the package registry did not answer in 300 s and pip has no cached wheel of {pins}")
    if done.returncode != 0:
        output = done.stdout + done.stderr
        if any(word in output for word in UNREACHABLE):
            pytest.skip(f"the package registry is unreachable and pip has no cached wheel of {pins}: "
                        f"{output.strip().splitlines()[-1]}")
        pytest.fail(f"pip install {pins} failed:\n{output[-3000:]}")
    # A wheel of a copy of the checkout (building in place would leave build/ in the repository).
    src = root / "src"
    shutil.copytree(REPO_ROOT / "espnet_hifigan", src / "espnet_hifigan",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(REPO_ROOT / "setup.py", src / "setup.py")
    done = _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(root / "wheels"), str(src))
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = (root / "wheels").glob("espnet_hifigan-*.whl")
    done = _pip("--python", str(python), "install", "--no-deps", str(wheel))
    assert done.returncode == 0, done.stderr[-3000:]
    workdir = root / "work"
    workdir.mkdir()
    return RuntimeEnv(python=python, workdir=workdir)


@pytest.fixture(scope="module")
def runtime_export(tmp_path_factory) -> dict:
    """The debug vocoder with GlobalMVN (folded into the graph), exported in this (full) install."""
    root = tmp_path_factory.mktemp("runtime_export")
    vocoder = _vocoder(root, yaml.safe_load(DEBUG_CONFIG.read_text())["generator_conf"], normalize=True)
    export_vocoder(vocoder, root / "export", formats=("onnx",))
    return {"vocoder": vocoder, "dir": root / "export"}


def test_onnx_vocoder_imports_nothing_heavy():
    """The runtime's modules and public names, imported in the full install, leave the heavy packages out."""
    code = (
        "import sys\n"
        "import espnet_hifigan.export.onnx_vocoder, espnet_hifigan.core.scp, espnet_hifigan.contract\n"
        "from espnet_hifigan import OnnxVocoder, FeatureContract, ContractMismatch, read_feats_scp\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]"


def test_runtime_env_has_only_the_runtime(runtime_env):
    out = runtime_env.run(
        "import importlib.util, espnet_hifigan\n"
        "try:\n"
        "    import torch\n"
        "except ModuleNotFoundError:\n"
        "    print('no torch')\n"
        f"print(sorted(m for m in {HEAVY!r} if importlib.util.find_spec(m) is not None))\n"
        "print(espnet_hifigan.__file__)\n"
    )
    no_torch, present, package = out.splitlines()
    assert no_torch == "no torch"
    assert present == "[]"
    assert Path(package).is_relative_to(runtime_env.python.parent.parent), package


def test_runtime_synthesises_as_the_full_install(runtime_env, runtime_export, synthetic_corpus, tmp_path):
    """An npy feats.scp with its contract, read and synthesised in the runtime venv, equals the full install."""
    vocoder = runtime_export["vocoder"]
    mels = _mels(vocoder, synthetic_corpus)
    for utt, mel in mels.items():
        np.save(tmp_path / f"{utt}.npy", mel)
    write_scp(tmp_path / "feats.scp", [(utt, f"{utt}.npy") for utt in mels])  # relative, as ESPnet writes them
    vocoder.contract.save(tmp_path / CONTRACT_FILE)
    runtime_env.run(
        "import numpy as np\n"
        "from espnet_hifigan import OnnxVocoder, read_feats_scp\n"
        "from espnet_hifigan.contract import discover_contract\n"
        f"scp = {str(tmp_path / 'feats.scp')!r}\n"
        f"vocoder = OnnxVocoder({str(runtime_export['dir'])!r})\n"
        "contract = discover_contract(scp)\n"
        "assert contract is not None and contract.normalize is None\n"
        "wavs = {utt: vocoder(mel, contract=contract) for utt, mel in read_feats_scp(scp)}\n"
        f"np.savez({str(tmp_path / 'wavs.npz')!r}, **wavs)\n"
    )
    got = np.load(tmp_path / "wavs.npz")
    assert sorted(got.files) == sorted(mels)
    onnx = OnnxVocoder(runtime_export["dir"])
    for utt, mel in mels.items():
        expected = vocoder(mel)
        assert np.abs(expected).max() > 1e-3, "degenerate reference: parity would prove nothing"
        assert got[utt].shape == expected.shape == (len(mel) * vocoder.hop_length,), utt
        assert np.abs(got[utt] - expected).max() <= PARITY_ATOL, utt
        assert np.abs(got[utt] - onnx(mel)).max() <= PARITY_ATOL, utt


def test_runtime_says_what_needs_the_full_install(runtime_env, runtime_export, tmp_path):
    """Normalised features (de-normalising needs ESPnet) and Kaldi arks (kaldiio): one clear error each."""
    stats = Normalization.from_stats_file(runtime_export["dir"].parent / "feats_stats.npz")
    normalised = dict(runtime_export["vocoder"].contract.to_dict(), normalize=stats.to_dict())
    (tmp_path / "ark.scp").write_text(f"utt1 {tmp_path / 'feats.ark'}:9\n")
    out = runtime_env.run(
        "import numpy as np\n"
        "from espnet_hifigan import OnnxVocoder, FeatureContract, read_feats_scp\n"
        "from espnet_hifigan.contract import ContractError\n"
        f"vocoder = OnnxVocoder({str(runtime_export['dir'])!r})\n"
        "try:\n"
        f"    vocoder(np.zeros((4, 80), np.float32), contract=FeatureContract.from_dict({normalised!r}))\n"
        "except ContractError as e:\n"
        "    print(e)\n"
        "try:\n"
        f"    list(read_feats_scp({str(tmp_path / 'ark.scp')!r}))\n"
        "except ValueError as e:\n"
        "    print(e)\n"
    )
    normalise_error, ark_error = out.splitlines()
    assert "needs torch and ESPnet" in normalise_error and "denorm/feats.scp" in normalise_error
    assert ark_error.startswith(f"{tmp_path / 'ark.scp'}:1: cannot read features of utt1")
    assert "pip install kaldiio" in ark_error


def test_runtime_streams_as_the_full_install(runtime_env, tmp_path):
    """``OnnxVocoder.stream`` (numpy + onnxruntime only) equals offline PyTorch synthesis."""
    vocoder = _vocoder(tmp_path, yaml.safe_load(DEBUG_CONFIG.read_text())["generator_conf"], normalize=True)
    export_vocoder(vocoder, tmp_path / "export", formats=("onnx_stream",), stream_chunk_frames=4)
    mel = (np.random.default_rng(5).standard_normal((37, 80)) * 1.5 - 4.0).astype(np.float32)
    np.save(tmp_path / "mel.npy", mel)
    runtime_env.run(
        "import numpy as np\n"
        "from espnet_hifigan import OnnxVocoder\n"
        f"mel = np.load({str(tmp_path / 'mel.npy')!r})\n"
        f"vocoder = OnnxVocoder({str(tmp_path / 'export')!r})\n"
        "wav = np.concatenate(list(vocoder.stream(np.array_split(mel, 6))))\n"  # chunks of 6-7 frames, steps of 4
        f"np.save({str(tmp_path / 'wav.npy')!r}, wav)\n"
    )
    expected = vocoder(mel)
    got = np.load(tmp_path / "wav.npy")
    assert np.abs(expected).max() > 1e-3, "degenerate reference: parity would prove nothing"
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= PARITY_ATOL
