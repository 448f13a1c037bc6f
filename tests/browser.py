"""Headless Chromium for tests: find it (``python tests/browser.py`` installs it), dump a page's
DOM, take screenshots, and collect the console (every console message and Content-Security-Policy
violation is logged).

Only the ``chromium`` binary is needed (Debian package ``chromium``); no Python packages.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
)
CONSOLE = re.compile(r":INFO:CONSOLE[^\]]*\]\s*(.*)")


def find_chromium() -> str | None:
    """Path of an installed Chromium, or ``None``."""
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


def install_chromium() -> tuple[str | None, str]:
    """Chromium's path, installing Debian's ``chromium`` with apt-get when it is missing and this
    runs as root (``make test`` calls it before the suite; the tests themselves never install).

    Returns ``(path, "")`` or ``(None, reason it is unavailable)``.
    """
    path = find_chromium()
    if path:
        return path, ""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, "chromium is not installed and cannot be installed (needs root and apt-get)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "chromium"]
    try:
        result = subprocess.run(install, capture_output=True, text=True, env=env, timeout=600,
                                check=False)
        if result.returncode != 0:
            subprocess.run(["apt-get", "update"], capture_output=True, env=env, timeout=300,
                           check=False)
            result = subprocess.run(install, capture_output=True, text=True, env=env,
                                    timeout=600, check=False)
    except (subprocess.TimeoutExpired, OSError) as error:
        return None, f"apt-get could not install chromium: {error}"
    path = find_chromium()
    if path:
        return path, ""
    return None, f"apt-get install chromium failed: {result.stderr.strip()[-300:]}"


@dataclass
class PageLoad:
    """What Chromium reported for one page."""

    dom: str
    console: list[str]
    log: str


def load(chromium: str, page: Path, *, fragment: str = "", screenshot: Path | None = None,
         window: tuple[int, int] = (1280, 1400), timeout: float = 900) -> PageLoad:
    """Open ``page`` (a local file) headless; return its DOM after scripts ran and its console.

    With ``screenshot`` a PNG of the viewport is written there instead of dumping the DOM.
    """
    url = page.resolve().as_uri() + (f"#{fragment}" if fragment else "")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        action = [f"--screenshot={screenshot}", f"--window-size={window[0]},{window[1]}"] \
            if screenshot else ["--dump-dom"]
        result = subprocess.run(
            [chromium, *FLAGS, f"--user-data-dir={profile}", *action, url],
            capture_output=True, text=True, timeout=timeout, check=False,
        )
    console = [m.group(1) for m in CONSOLE.finditer(result.stderr)]
    return PageLoad(result.stdout, console, result.stderr)


if __name__ == "__main__":
    found, reason = install_chromium()
    status = found or f"unavailable ({reason}); they will skip"
    print(f"chromium for the report tests: {status}")
