"""HTML pieces of the listening pages: escaping, relative URLs, the page shell and its script.

Everything is inline (no external resources, no server), so a page works opened from disk
(``file://``). The script does two things:

* sorting: clicking a ``<th data-key>`` of a ``table.sortable`` sorts its rows by that column
  (numbers by ``data-value``, undefined values last; a second click reverses); the page's
  ``#sort=<key>`` / ``#sort=-<key>`` (descending) applies the same sort on load;
* load checks: every ``<audio>`` and spectrogram ``<img>`` gets ``data-state="ok"`` or
  ``data-state="error"`` once it has loaded (metadata) or failed, and ``#load-status`` counts them,
  so a missing file shows on the page (and in ``chromium --dump-dom``).
"""

from __future__ import annotations

import html
import os
import urllib.parse
from pathlib import Path
from typing import Optional

CSS = """
body { font-family: system-ui, sans-serif; font-size: 14px; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; margin: 0 0 0.3em; } h2 { font-size: 1.15em; margin: 1.2em 0 0.4em; }
table { border-collapse: collapse; margin-bottom: 1em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; vertical-align: middle; }
th { background: #f0f0f0; position: sticky; top: 0; z-index: 1; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td[data-key=utt] { white-space: nowrap; }
table.sortable th[data-key] { cursor: pointer; user-select: none; }
table.sortable th[data-key]::after { content: " \\2195"; color: #999; }
th[aria-sort=ascending]::after { content: " \\25B2" !important; color: #222 !important; }
th[aria-sort=descending]::after { content: " \\25BC" !important; color: #222 !important; }
tbody tr:nth-child(even) { background: #fafafa; }
audio { width: 240px; display: block; }
img.spec { width: 330px; display: block; }
.best { font-weight: bold; }
.muted { color: #888; }
#load-status.bad { color: #b00; font-weight: bold; }
"""

SCRIPT = r"""
"use strict";
function lpStatus() {
  const status = document.getElementById("load-status");
  if (!status) return;
  const all = document.querySelectorAll("audio, img.spec");
  const ok = document.querySelectorAll("audio[data-state=ok], img.spec[data-state=ok]").length;
  const bad = document.querySelectorAll("audio[data-state=error], img.spec[data-state=error]").length;
  status.textContent = "audio and images: " + ok + " loaded, " + bad + " failed, "
    + (all.length - ok - bad) + " pending";
  status.classList.toggle("bad", bad > 0);
}
function lpMark(element, state) {
  element.dataset.state = state;
  lpStatus();
}
function lpSort(key, descending) {
  const table = document.querySelector("table.sortable");
  if (!table) return false;
  const heads = Array.from(table.tHead.rows[0].cells);
  const col = heads.findIndex(h => h.dataset.key === key);
  if (col < 0) return false;
  const numeric = heads[col].dataset.type === "num";
  const body = table.tBodies[0];
  const valueOf = row => {
    const cell = row.cells[col];
    return cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent;
  };
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    let x = valueOf(a), y = valueOf(b);
    if (numeric) {
      x = parseFloat(x); y = parseFloat(y);
      if (isNaN(x) || isNaN(y)) return isNaN(x) - isNaN(y);
      return descending ? y - x : x - y;
    }
    const order = x.localeCompare(y, undefined, {numeric: true});
    return descending ? -order : order;
  });
  rows.forEach(row => body.appendChild(row));
  heads.forEach(h => h.removeAttribute("aria-sort"));
  heads[col].setAttribute("aria-sort", descending ? "descending" : "ascending");
  table.dataset.sortKey = key;
  table.dataset.sortDir = descending ? "desc" : "asc";
  return true;
}
function lpSortFromHash() {
  const match = /(?:^#|&)sort=(-?)([^&]+)/.exec(location.hash);
  if (match) lpSort(decodeURIComponent(match[2]), match[1] === "-");
}
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("table.sortable th[data-key]").forEach(head => {
    head.addEventListener("click", () => {
      const table = head.closest("table");
      const descending = table.dataset.sortKey === head.dataset.key && table.dataset.sortDir === "asc";
      lpSort(head.dataset.key, descending);
      try {
        history.replaceState(null, "", "#sort=" + (descending ? "-" : "") + encodeURIComponent(head.dataset.key));
      } catch (e) { /* some browsers refuse history changes on file:// */ }
    });
  });
  document.querySelectorAll("audio:not([data-state])").forEach(a => {
    if (a.error) lpMark(a, "error"); else if (a.readyState >= 1) lpMark(a, "ok");
  });
  document.querySelectorAll("img.spec:not([data-state])").forEach(img => {
    if (img.complete) lpMark(img, img.naturalWidth > 0 ? "ok" : "error");
  });
  lpSortFromHash();
  lpStatus();
});
window.addEventListener("hashchange", lpSortFromHash);
"""


def esc(text: object) -> str:
    """HTML-escape ``text`` for element content and quoted attribute values."""
    return html.escape(str(text), quote=True)


def rel_url(target: Path, page_dir: Path) -> str:
    """The relative URL of ``target`` from a page in ``page_dir``, percent-encoded and escaped.

    Every character that could end or redirect a relative URL (``:``, ``#``, ``?``, ``%``, spaces)
    is percent-encoded, so ``a:b.wav`` is not read as a scheme and ``x#1.wav`` not as a fragment.
    """
    rel = os.path.relpath(os.path.abspath(target), os.path.abspath(page_dir))
    return esc(urllib.parse.quote(Path(rel).as_posix(), safe="/"))


def audio_tag(target: Path, page_dir: Path) -> str:
    """An ``<audio>`` player whose load state is recorded in ``data-state``."""
    return (
        f'<audio controls preload="metadata" src="{rel_url(target, page_dir)}" '
        "onloadedmetadata=\"lpMark(this,'ok')\" onerror=\"lpMark(this,'error')\"></audio>"
    )


def image_tag(target: Path, page_dir: Path, alt: str) -> str:
    """A spectrogram thumbnail linking to the full-size PNG, its load state in ``data-state``."""
    url = rel_url(target, page_dir)
    return (
        f'<a href="{url}"><img class="spec" src="{url}" alt="{esc(alt)}" '
        "onload=\"lpMark(this,'ok')\" onerror=\"lpMark(this,'error')\"></a>"
    )


def page(title: str, body: str, subtitle: Optional[str] = None) -> str:
    """A complete HTML document with the inline style and script."""
    sub = f'<p class="muted">{esc(subtitle)}</p>\n' if subtitle else ""
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{esc(title)}</title>\n'
        f"<style>{CSS}</style>\n<script>{SCRIPT}</script>\n</head>\n<body>\n"
        f"<h1>{esc(title)}</h1>\n{sub}{body}\n</body>\n</html>\n"
    )
