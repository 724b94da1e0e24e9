"""Where kapacitord is: found the same way by the entrypoint, the demo, samples and tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

INSTALL_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "install_kapacitor.sh"


def cached_bin_dir() -> Path | None:
    """The bin dir of scripts/install_kapacitor.sh's build, if this checkout has built it."""
    if not INSTALL_SCRIPT.is_file():  # the image has no scripts/: kapacitord is on PATH
        return None
    done = subprocess.run(["bash", str(INSTALL_SCRIPT), "--check"], capture_output=True,
                          text=True, check=False)
    return Path(done.stdout.strip()) if done.returncode == 0 else None


def find_kapacitord(env: Mapping[str, str] = os.environ) -> str | None:
    """$KAPACITORD, else the pinned build in the cache, else a kapacitord on PATH."""
    if env.get("KAPACITORD"):
        return env["KAPACITORD"]
    built = cached_bin_dir()
    if built is not None:
        return str(built / "kapacitord")
    return shutil.which("kapacitord")


NOT_FOUND = ("kapacitord not found: build the pinned version with `make kapacitor` "
             "(scripts/install_kapacitor.sh), put one on PATH, or set KAPACITORD")
