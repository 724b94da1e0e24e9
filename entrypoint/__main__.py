"""`python -m entrypoint`: check config.json, run kapacitord, set up and look after its tasks."""

import sys

from entrypoint.cli import main

sys.exit(main())
