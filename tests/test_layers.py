"""The package's layering (docs/architecture.md), kept by its import graph.

Every import of a package module by another, at module level or inside a function (those behind
``if TYPE_CHECKING:`` are annotations, not imports), is an edge. The tests fail when someone adds
an import cycle, an import of ``bin/`` outside ``bin/``, or an import from a lower layer of a
higher one; and when a module does not import on its own, or when ``core``/``contract`` pull in
torch or ESPnet at import time.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = REPO_ROOT / "espnet_hifigan"

# What each layer may import (itself included). "facade" is the top-level re-exports
# (espnet_hifigan, espnet_hifigan.api, espnet_hifigan.tts, espnet_hifigan.tasks.*).
LOWER = {
    "core": set(),
    "contract": {"core"},
    "nets": {"core"},
    "formats": {"core", "contract", "nets"},
    "evaluation": {"core", "nets"},
    "train": {"core", "contract", "nets", "formats", "evaluation"},
    "inference": {"core", "contract", "nets", "formats"},
    "data": {"core", "contract", "nets", "formats"},
    "export": {"core", "contract", "nets", "formats", "inference"},
}
ALL_LAYERS = set(LOWER)
LOWER["facade"] = ALL_LAYERS
LOWER["bin"] = ALL_LAYERS | {"facade"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES: Dict[str, Path] = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ALL_LAYERS | {"bin"}:
        return parts[1]
    return "facade"


def _type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(module: str) -> Set[str]:
    """The package modules ``module`` imports (any depth, TYPE_CHECKING blocks excluded)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: Set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if _type_checking_block(child):
                for orelse in child.orelse:
                    visit(orelse)
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                # "from pkg import sub" depends on the submodule; any other name, on pkg itself.
                for alias in child.names:
                    found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
            visit(child)

    visit(tree)
    return {m for m in found if m in MODULES and m != module}


GRAPH: Dict[str, Set[str]] = {m: imports_of(m) for m in MODULES}


def test_the_graph_sees_imports_inside_functions():
    """A guard on the parser itself: a function-level import is an edge."""
    assert "espnet_hifigan.formats.official" in GRAPH["espnet_hifigan.inference.vocoder"]  # inside from_official
    assert len(MODULES) > 50


def strongly_connected(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Tarjan's strongly connected components with more than one module (or a self-loop)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    out: List[List[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


def test_no_import_cycles():
    assert strongly_connected(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle():
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def bin_imports(graph: Dict[str, Set[str]]) -> List[str]:
    return [f"{m} imports {d}" for m, deps in sorted(graph.items()) if layer(m) != "bin" for d in sorted(deps) if layer(d) == "bin"]


def upward_imports(graph: Dict[str, Set[str]]) -> List[str]:
    return [
        f"{m} ({layer(m)}) imports {d} ({layer(d)})"
        for m, deps in sorted(graph.items())
        for d in sorted(deps)
        if layer(d) != layer(m) and layer(d) not in LOWER[layer(m)]
    ]


def test_nothing_outside_bin_imports_bin():
    assert bin_imports(GRAPH) == []


def test_lower_layers_never_import_higher_ones():
    assert upward_imports(GRAPH) == []


def test_an_upward_import_is_caught():
    """The checks applied to the real graph plus one made-up edge each."""
    graph = {m: set(deps) for m, deps in GRAPH.items()}
    graph["espnet_hifigan.contract.model"].add("espnet_hifigan.nets.features")
    graph["espnet_hifigan.evaluation.listening"].add("espnet_hifigan.bin.voc_score")
    assert upward_imports(graph) == [
        "espnet_hifigan.contract.model (contract) imports espnet_hifigan.nets.features (nets)",
        "espnet_hifigan.evaluation.listening (evaluation) imports espnet_hifigan.bin.voc_score (bin)",
    ]
    assert bin_imports(graph) == ["espnet_hifigan.evaluation.listening imports espnet_hifigan.bin.voc_score"]


def test_every_module_imports_on_its_own():
    """Each module imported first, with every other module of the package unloaded before it (a
    cycle that works only in one import order fails here)."""
    code = (
        "import importlib, sys\n"
        "failed = []\n"
        f"for name in {sorted(MODULES)!r}:\n"
        "    for loaded in [m for m in sys.modules if m == 'espnet_hifigan' or m.startswith('espnet_hifigan.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as e:\n"
        "        failed.append(f'{name}: {type(e).__name__}: {e}')\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]


@pytest.mark.parametrize("modules", [["espnet_hifigan.contract", "espnet_hifigan.core.conventions", "espnet_hifigan.core.fileio"]])
def test_core_and_contract_import_neither_torch_nor_espnet(modules):
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + (
        "heavy = sorted(m for m in ('torch', 'espnet2', 'kaldiio', 'torchaudio') if m in sys.modules)\n"
        "print(heavy)\nsys.exit(1 if heavy else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]


def test_no_module_over_the_size_limit():
    """Small modules with one concern: none over ~400 lines (DEVELOPERS.md)."""
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > 420}
    assert long == {}


def test_the_paths_users_import_still_work():
    """The README's paths and every public name keep working after the move into subpackages."""
    import espnet_hifigan
    from espnet_hifigan.api import Vocoder
    from espnet_hifigan.export import export_vocoder
    from espnet_hifigan.inference.text_to_wav import TextToWav as HomeTextToWav
    from espnet_hifigan.inference.vocoder import Vocoder as HomeVocoder
    from espnet_hifigan.tasks.vocoder import VocoderTask
    from espnet_hifigan.train.task import VocoderTask as HomeTask
    from espnet_hifigan.tts import TextToWav

    assert Vocoder is HomeVocoder and TextToWav is HomeTextToWav and VocoderTask is HomeTask
    assert "TextToWav" in espnet_hifigan.__all__
    for name in espnet_hifigan.__all__:
        assert getattr(espnet_hifigan, name) is not None, name
    assert callable(export_vocoder)


def test_every_console_script_points_at_bin():
    """setup.py's console scripts name bin/ modules that exist and define their function."""
    import importlib
    import re

    scripts = re.findall(r'"[\w-]+=(espnet_hifigan\.[\w.]+):(\w+)"', (REPO_ROOT / "setup.py").read_text())
    assert len(scripts) >= 15
    for module, function in scripts:
        assert module.startswith("espnet_hifigan.bin."), module
        assert callable(getattr(importlib.import_module(module), function)), f"{module}:{function}"
