"""Running a CLI's ``main(argv)`` in process and collecting what it said (shared by the robustness tests)."""

from __future__ import annotations

import logging
from typing import Callable, List, Sequence, Tuple


class ErrorLines(logging.Handler):
    """Collects the messages of ERROR records while attached to the root logger (``with`` block)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def __enter__(self) -> "ErrorLines":
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        logging.getLogger().removeHandler(self)


def exit_status(main: Callable, argv: Sequence[object]) -> int:
    """``main([str(a) ...])`` as an exit status: its return value, or a ``SystemExit``'s code."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 1
    return rc or 0


def call(main: Callable, argv: Sequence[object], caplog, capsys) -> Tuple[int, str]:
    """A CLI's ``main(argv)`` in process: (exit status, log at INFO and above + stdout + stderr)."""
    caplog.clear()
    with caplog.at_level(logging.INFO):
        rc = exit_status(main, argv)
    out, err = capsys.readouterr()
    return rc, caplog.text + out + err
