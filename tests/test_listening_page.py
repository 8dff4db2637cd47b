"""Listening pages: links, scores per row, bad input, the experiment page, and a real browser.

The browser test opens the page in headless Chromium (``chromium --headless``): the table must
render every row and score, ``#sort=...`` must reorder the rows with the page's own sort function,
and every ``<audio>``/spectrogram must load (``data-state="ok"``), while a deleted file must show
as ``data-state="error"`` (the negative control). Its screenshot is kept at
``tests/artifacts/listening_page.png``. Without chromium the browser test is skipped.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pytest
import soundfile as sf

from espnet_hifigan.bin import listening_page
from espnet_hifigan.evaluation.listening import PAGE_NAME, REF_DIR
from espnet_hifigan.evaluation.results import append_results_row

REPO_ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO_ROOT / "tests" / "artifacts" / "listening_page.png"
FS = 16000
# utt -> (pesq, mcd); nan is an undefined score. Ids sort differently from both metrics, and one
# id holds every character HTML or a URL could trip on.
ODD_UTT = 'spk2_<b>&"x"#1:?'
SCORES = {
    "spk1_a": (1.5, 9.0),
    "spk1_b": (3.25, 4.0),
    ODD_UTT: (float("nan"), 6.5),
    "spk3_c": (2.0, 5.5),
}
METRICS = ("pesq", "mcd")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def _tone(seconds: float, f0: float) -> np.ndarray:
    t = np.arange(int(FS * seconds)) / FS
    return (0.3 * np.sin(2 * np.pi * f0 * t) * np.hanning(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def voc_score_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A spectrogram PNG as voc_score draws it (drawn once: plotting is the slow part)."""
    from espnet_hifigan.evaluation.plots import plot_spectrogram_pair

    png = tmp_path_factory.mktemp("png") / "spectrogram.png"
    plot_spectrogram_pair(_tone(0.4, 150), _tone(0.4, 152), FS, png)
    return png


@pytest.fixture()
def recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, voc_score_png: Path) -> Dict[str, Path]:
    """A recipe directory (the cwd) with a scored decode directory and references of every kind.

    References: an absolute wav, a recipe-relative flac, a pipe (decoded to wav) and a file with
    the odd id. ``voc_score`` drew one spectrogram; the others are the page's to draw.
    """
    monkeypatch.chdir(tmp_path)
    decode = Path("exp/voc/decode_valid.loss_mel_l1.best/test")
    (decode / "wav").mkdir(parents=True)
    (tmp_path / "refs").mkdir()
    Path("dump/raw/test").mkdir(parents=True)
    ref_lines, gen_lines = [], []
    for i, utt in enumerate(SCORES):
        ref, gen = _tone(0.4 + 0.1 * i, 150 + 50 * i), _tone(0.4 + 0.1 * i, 152 + 50 * i)
        sf.write(decode / "wav" / f"{utt}.wav", gen, FS, subtype="PCM_16")
        gen_lines.append(f"{utt} {decode / 'wav' / f'{utt}.wav'}\n")
        if i == 0:
            value = str(tmp_path / "refs" / f"{utt}.wav")
            sf.write(value, ref, FS)
        elif i == 1:
            value = f"dump/raw/test/{utt}.flac"
            sf.write(value, ref, FS)
        elif i == 2:
            value = str(tmp_path / "refs" / f"{utt}.wav")
            sf.write(value, ref, FS)
        else:
            sf.write(tmp_path / "refs" / "piped.wav", ref, FS)
            value = f"cat {tmp_path / 'refs' / 'piped.wav'} |"
        ref_lines.append(f"{utt} {value}\n")
    Path("dump/raw/test/wav.scp").write_text("".join(ref_lines))
    (decode / "wav.scp").write_text("".join(gen_lines))
    scoring = decode / "scoring"
    (scoring / "spectrograms").mkdir(parents=True)
    lines = ["\t".join(["utt", *METRICS])]
    lines += ["\t".join([utt, *(f"{v:.6g}" for v in values)]) for utt, values in SCORES.items()]
    (scoring / "per_utt.tsv").write_text("\n".join(lines) + "\n")
    summary = dict(
        num_utterances=len(SCORES),
        metrics={m: dict(mean=float(np.nanmean(v)), std=float(np.nanstd(v)), n=int(np.isfinite(v).sum()),
                         higher_is_better=m == "pesq", unit="", description=f"{m} of the test")
                 for m, v in zip(METRICS, np.array(list(SCORES.values())).T)},
        info=dict(ref_scp="dump/raw/test/wav.scp", checkpoint="valid.loss_mel_l1.best.pth", set="test",
                  rtf=0.0123, device="cpu (1 threads)"),
        options=dict(mel_conf=None),
    )
    (scoring / "summary.json").write_text(json.dumps(summary))
    from espnet_hifigan.evaluation.plots import spectrogram_filename

    shutil.copyfile(voc_score_png, scoring / "spectrograms" / spectrogram_filename(sorted(SCORES)[0]))
    return dict(root=tmp_path, decode=decode, ref_scp=Path("dump/raw/test/wav.scp"), exp=Path("exp/voc"))


class PageParser(HTMLParser):
    """Links, rows (utt -> {data-key: text}), players and images of a page (or a dumped DOM)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: List[str] = []
        self.rows: Dict[str, Dict[str, str]] = {}
        self.order: List[str] = []
        self.states: Dict[str, List[Optional[str]]] = {"audio": [], "img": []}
        self.srcs: Dict[str, List[str]] = {"audio": [], "img": []}
        self._utt: Optional[str] = None
        self._key: Optional[str] = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        self.links += [a[k] for k in ("src", "href") if a.get(k)]
        if tag == "tr" and "data-utt" in a:
            self._utt = a["data-utt"]
            self.rows[self._utt] = {}
            self.order.append(self._utt)
        if tag == "td" and self._utt is not None and "data-key" in a:
            self._key = a["data-key"]
            self.rows[self._utt][self._key] = ""
        if tag in self.states and (tag == "audio" or a.get("class") == "spec"):
            self.states[tag].append(a.get("data-state"))
            self.srcs[tag].append(a.get("src", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._key = None
        if tag == "tr":
            self._utt = None

    def handle_data(self, data: str) -> None:
        if self._utt is not None and self._key is not None:
            self.rows[self._utt][self._key] += data


def parse(text: str) -> PageParser:
    parser = PageParser()
    parser.feed(text)
    return parser


def _write_pages(recipe: Dict[str, Path], max_plots: int = 1) -> Path:
    args = ["--decode_dir", str(recipe["decode"]), "--ref_scp", str(recipe["ref_scp"]),
            "--exp_dir", str(recipe["exp"]), "--max_plots", str(max_plots)]
    assert listening_page.main(args) == 0
    return recipe["decode"] / PAGE_NAME


def _expected_cell(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}"


def test_page_links_resolve_inside_and_scores_sit_in_their_rows(recipe):
    page = _write_pages(recipe, max_plots=1)
    text = page.read_text(encoding="utf-8")
    parsed = parse(text)
    decode = recipe["decode"].resolve()
    assert parsed.links
    for link in parsed.links:
        assert "://" not in link and not link.startswith("/"), f"absolute link {link}"
        target = (page.parent / urllib.parse.unquote(link)).resolve()
        assert target.is_file(), f"{link} does not resolve to a file"
        if not link.startswith("../"):  # all but the link back to the experiment page
            assert target.is_relative_to(decode), f"{link} leaves the decode directory"
    assert set(parsed.rows) == set(SCORES)
    for utt, values in SCORES.items():
        row = parsed.rows[utt]
        assert row["utt"] == utt
        for metric, value in zip(METRICS, values):
            assert row[metric] == _expected_cell(value), (utt, metric)
    # the odd id is escaped, never raw markup
    assert "<b>" not in text and "&lt;b&gt;&amp;&quot;x&quot;#1:?" in text
    # references copied beside the page: files kept as they are, the pipe decoded to wav
    copies = sorted(p.name for p in (recipe["decode"] / REF_DIR).iterdir())
    assert copies == sorted(["spk1_a.wav", "spk1_b.flac", "spk3_c.wav", f"{ODD_UTT}.wav"])
    # voc_score's spectrogram kept, one more drawn (max_plots=1), two left undrawn
    assert len(parsed.srcs["img"]) == 2 and text.count("not drawn") == 2
    exp_page = parse((recipe["exp"] / PAGE_NAME).read_text(encoding="utf-8"))
    assert "decode_valid.loss_mel_l1.best/test/index.html" in exp_page.links


def test_reference_scp_defaults_to_the_one_scoring_used(recipe):
    assert listening_page.main(["--decode_dir", str(recipe["decode"]), "--max_plots", "0"]) == 0
    parsed = parse((recipe["decode"] / PAGE_NAME).read_text(encoding="utf-8"))
    assert len([s for s in parsed.srcs["audio"] if s.startswith(f"{REF_DIR}/")]) == len(SCORES)
    assert "experiment page</a>" not in (recipe["decode"] / PAGE_NAME).read_text(encoding="utf-8")


def test_bad_reference_fails_naming_it_and_writes_nothing(recipe, caplog):
    scp = recipe["ref_scp"]
    scp.write_text(scp.read_text().replace("dump/raw/test/spk1_b.flac", "dump/raw/test/gone.flac"))
    args = ["--decode_dir", str(recipe["decode"]), "--ref_scp", str(scp)]
    assert listening_page.main(args) == 1
    assert "gone.flac" in caplog.text and "spk1_b" in caplog.text
    leftovers = sorted(p.name for p in recipe["decode"].iterdir())
    assert leftovers == ["scoring", "wav", "wav.scp"]


def test_stale_scores_are_an_error(recipe, caplog):
    tsv = recipe["decode"] / "scoring" / "per_utt.tsv"
    tsv.write_text(tsv.read_text() + "spk9_z\t1\t2\n")
    assert listening_page.main(["--decode_dir", str(recipe["decode"]), "--ref_scp", str(recipe["ref_scp"])]) == 1
    assert "spk9_z" in caplog.text and "stage 7" in caplog.text
    assert not (recipe["decode"] / PAGE_NAME).exists()


def test_experiment_page_puts_checkpoints_side_by_side(recipe):
    _write_pages(recipe, max_plots=0)
    results_md = recipe["exp"] / "RESULTS.md"
    for checkpoint, pesq in (("checkpoint_1000steps.pth", 2.5), ("valid.loss_mel_l1.best.pth", 3.0)):
        summary = dict(num_utterances=4, metrics={
            "pesq": dict(mean=pesq, std=0.1, n=4, higher_is_better=True, unit="MOS"),
            "mcd": dict(mean=10 - pesq, std=0.2, n=4, higher_is_better=False, unit="dB"),
        })
        append_results_row(results_md, summary, checkpoint, "test", 0.01, "cpu")
    assert listening_page.main(["--exp_dir", str(recipe["exp"])]) == 0
    text = (recipe["exp"] / PAGE_NAME).read_text(encoding="utf-8")
    head = text[text.index("<h2>test</h2>"):]
    assert head.index("checkpoint_1000steps.pth") < head.index("valid.loss_mel_l1.best.pth")
    # the best column of each metric is bold: pesq higher, mcd lower, both the second checkpoint
    assert '<td class="num best" data-key="pesq">3.000 ± 0.100</td>' in text
    assert '<td class="num best" data-key="mcd">7.000 ± 0.200</td>' in text
    assert '<a href="decode_valid.loss_mel_l1.best/test/index.html">valid.loss_mel_l1.best.pth</a>' in text


def test_experiment_page_without_anything_is_an_error(tmp_path, caplog):
    assert listening_page.main(["--exp_dir", str(tmp_path)]) == 1
    assert "stages 6-7" in caplog.text and not (tmp_path / PAGE_NAME).exists()


# ---------------------------------------------------------------------------------- browser
def find_chromium() -> Optional[str]:
    """A Chromium-family browser on PATH, if any."""
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


def run_chromium(browser: str, profile: Path, *args: str) -> str:
    """Run headless Chromium (no sandbox: CI runs as root) and return its stdout."""
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               f"--user-data-dir={profile}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stderr[-2000:]}"
    return done.stdout


def dump_dom(browser: str, profile: Path, url: str) -> PageParser:
    return parse(run_chromium(browser, profile, "--virtual-time-budget=10000", "--dump-dom", url))


def _sorted_ids(metric: int, descending: bool) -> List[str]:
    defined = [u for u in SCORES if not math.isnan(SCORES[u][metric])]
    undefined = [u for u in SCORES if math.isnan(SCORES[u][metric])]
    return sorted(defined, key=lambda u: SCORES[u][metric], reverse=descending) + undefined


def test_page_in_headless_chromium(recipe, tmp_path):
    browser = find_chromium()
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run installs it when run as root)")
    page = _write_pages(recipe, max_plots=len(SCORES)).resolve()
    url = page.as_uri()
    profile = tmp_path / "chromium-profile"

    plain = dump_dom(browser, profile, url)
    assert plain.order == sorted(SCORES)
    for utt, values in SCORES.items():
        assert [plain.rows[utt][m] for m in METRICS] == [_expected_cell(v) for v in values]
    assert plain.states["audio"] == ["ok"] * 2 * len(SCORES), plain.srcs["audio"]
    assert plain.states["img"] == ["ok"] * len(SCORES), plain.srcs["img"]

    assert dump_dom(browser, profile, url + "#sort=-pesq").order == _sorted_ids(0, descending=True)
    assert dump_dom(browser, profile, url + "#sort=mcd").order == _sorted_ids(1, descending=False)

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    run_chromium(browser, profile, f"--screenshot={SCREENSHOT}", "--window-size=1500,1300",
                 "--virtual-time-budget=5000", url + "#sort=-pesq")
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"listening page screenshot: {SCREENSHOT}")

    # negative control: a missing generated wav and a missing picture are caught
    broken_wav = recipe["decode"] / "wav" / "spk1_b.wav"
    broken_png = next((recipe["decode"] / "scoring" / "spectrograms").glob("spk3_c*.png"))
    os.remove(broken_wav)
    os.remove(broken_png)
    broken = dump_dom(browser, profile, url)
    failed = [src for src, state in zip(broken.srcs["audio"] + broken.srcs["img"],
                                        broken.states["audio"] + broken.states["img"]) if state != "ok"]
    assert sorted(failed) == ["scoring/spectrograms/spk3_c.png", "wav/spk1_b.wav"]
    assert set(broken.states["audio"] + broken.states["img"]) == {"ok", "error"}
