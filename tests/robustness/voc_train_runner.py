"""Run ``voc_train`` many times in a test file without paying ESPnet's import each time.

Each run is a real process with its own exit status and log, forked from a multiprocessing
forkserver that imported ``espnet_hifigan.bin.voc_train`` once (about 7 s saved per run). A run
may be told to SIGKILL itself half-way through writing its n-th ``checkpoint.pth``.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import List, Tuple

_CONTEXT = None


def _context():
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = multiprocessing.get_context("forkserver")
        _CONTEXT.set_forkserver_preload(["espnet_hifigan.bin.voc_train"])
    return _CONTEXT


def _kill_while_writing_checkpoint(nth: int) -> None:
    """SIGKILL this process after half of the ``nth`` checkpoint.pth write (old or atomic path)."""
    import torch

    real_save = torch.save
    seen = [0]

    def save(obj, f, *args, **kwargs):
        name = os.path.basename(str(getattr(f, "name", f)))
        if name in ("checkpoint.pth", ".checkpoint.pth.tmp"):
            seen[0] += 1
            if seen[0] == nth:
                buffer = io.BytesIO()
                real_save(obj, buffer)
                half = buffer.getvalue()[: len(buffer.getvalue()) // 2]
                if hasattr(f, "write"):
                    f.write(half)
                    f.flush()
                else:
                    Path(f).write_bytes(half)
                os.kill(os.getpid(), signal.SIGKILL)
        return real_save(obj, f, *args, **kwargs)

    torch.save = save


def _child(args: List[str], log: str, kill_at_checkpoint: int) -> None:
    os.setsid()  # its own process group, as a batch job: the signal reaches the DataLoader workers
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    # DataLoader workers are forked from the trainer, as in a real run (not from the forkserver).
    multiprocessing.set_start_method("fork", force=True)
    if kill_at_checkpoint:
        _kill_while_writing_checkpoint(kill_at_checkpoint)
    from espnet_hifigan.bin import voc_train

    code = 0
    try:
        voc_train.main([str(a) for a in args])
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            code = e.code or 0
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001 - a crash is reported as a Python process would
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)


def start(args: List, log: Path, kill_at_checkpoint: int = 0):
    """Start ``voc_train args`` (stdout and stderr to ``log``); returns the process."""
    process = _context().Process(target=_child, args=([str(a) for a in args], str(log), kill_at_checkpoint))
    process.start()
    return process


def run(args: List, log: Path, kill_at_checkpoint: int = 0, timeout: float = 300) -> Tuple[int, str]:
    """Run ``voc_train args`` to its end; returns (exit status, -signal if killed; log text)."""
    process = start(args, log, kill_at_checkpoint)
    process.join(timeout)
    if process.exitcode is None:
        process.kill()
        process.join()
        raise AssertionError(f"voc_train {args} did not end within {timeout} s:\n{Path(log).read_text()[-3000:]}")
    return process.exitcode, Path(log).read_text()
