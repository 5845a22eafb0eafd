"""Draw the ratio chart with whichever Python on the machine has matplotlib.

The bench itself is stdlib-only; the chart is optional. Debian's
python3-matplotlib lives in /usr/bin/python3's site-packages, which may not be
the interpreter running the bench (e.g. a pyenv one), so the plotting is done in
a subprocess (chart.py) by the first interpreter that can import matplotlib."""

from __future__ import annotations

import functools
import os
import sys

from .util import BENCH_DIR, sh, short

CHART_SCRIPT = os.path.join(BENCH_DIR, "berthbench", "chart.py")


@functools.lru_cache(maxsize=None)
def _probe(py: str) -> bool:
    rc, _, _ = sh([py, "-c", "import matplotlib"], timeout=60)
    return rc == 0


def python_with_matplotlib() -> str | None:
    cands = []
    for py in (sys.executable, "/usr/bin/python3"):
        if py and os.path.exists(py) and py not in cands:
            cands.append(py)
    for py in cands:
        if _probe(py):
            return py
    return None


def forget_probe() -> None:
    _probe.cache_clear()


def make_chart(results_json: str, png: str) -> tuple[bool, str]:
    py = python_with_matplotlib()
    if py is None:
        return False, "matplotlib is not importable"
    rc, out, err = sh([py, CHART_SCRIPT, results_json, png], timeout=180)
    if rc != 0:
        return False, f"chart script failed: {short(err or out, 300)}"
    if not os.path.exists(png):
        return False, short(out, 300) or "chart script drew nothing"
    return True, f"drawn with {py}"
