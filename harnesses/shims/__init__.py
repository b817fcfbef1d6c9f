"""Runner shims: standalone scripts that run inside the sandbox, in the target's environment.

They import nothing from fuzzorch, so they run in any target environment; the worker
passes their path to the target's interpreter.
"""

from pathlib import Path

SHIMS = Path(__file__).resolve().parent
HYPOTHESIS_SHIM = SHIMS / "_fuzzorch_shim_hypothesis.py"
