"""The demo's target: a tiny CSV library whose history lets a bug into a release branch.

``csvlite/`` holds the files of its first commit; ``HISTORY`` lists the later commits as
file replacements. ``orchestrator/demo.py`` turns them into a real git repository.
"""

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent
CSVLITE = EXAMPLES / "csvlite"
