"""`python -m entrypoint migrate OLD.json`: an EII config.json printed in this project's format.

The result is what the entrypoint would run from the EII file itself (entrypoint/eii.py), checked
the same way; save it as config.json beside the TICKscripts to drop the EII warning.
"""

from __future__ import annotations

import json
from pathlib import Path

from entrypoint import config as config_json
from entrypoint import eii


def run_migrate(path: Path, home: Path) -> int:
    """Print the migrated config.json (exit 0), or what stands in the way (exit 2)."""
    try:
        document = json.loads(path.read_text())
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror}")
        return 2
    except ValueError as exc:
        print(f"{path}: invalid JSON: {exc}")
        return 2
    if not eii.is_eii(document):
        print(f"{path}: not in EII's format (no `task` list, top-level or under `config`)")
        return 2
    try:
        ours, _ = config_json.from_eii(document, path, home)
        config_json.parse(json.dumps(ours), path, home)
    except config_json.ConfigError as exc:
        print(f"cannot migrate:\n{exc}")
        return 2
    print(json.dumps(ours, indent=2))
    return 0
