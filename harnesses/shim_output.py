"""What the Hypothesis shim's triage modes print: the falsifying example, or "did not reproduce".

``--shrink`` prints the minimal example between two marker lines before the usual
``=== fuzzorch: uncaught exception ===`` traceback; both modes print a "did not reproduce"
marker when the test passes. The text comes from an untrusted harness, which can print
anything, fake markers included: parsing never raises, keeps bounded amounts, does linear
work and takes the *last* complete block. It only describes; the worker takes the exit code
and the minimized example file as the ground truth.

The shim (``harnesses/shims/_fuzzorch_shim_hypothesis.py``) imports nothing from fuzzorch and
keeps copies of the markers and of ``format_falsifying_example``; a unit test checks that
the copies agree.
"""

from __future__ import annotations

from dataclasses import dataclass

FALSIFYING_EXAMPLE_MARKER = "=== fuzzorch: falsifying example ==="
END_FALSIFYING_EXAMPLE_MARKER = "=== fuzzorch: end falsifying example ==="
DID_NOT_REPRODUCE_MARKER = "=== fuzzorch: did not reproduce ==="
TRUNCATED_MARKER = "[fuzzorch: falsifying example truncated]"

#: The longest falsifying example kept, in characters, before the truncation marker.
MAX_EXAMPLE_CHARS = 64 * 1024
#: Output beyond this is cut from the middle: the last block is near the end.
MAX_TEXT_CHARS = 4_000_000

_TRUNCATED_SUFFIX = "\n" + TRUNCATED_MARKER


@dataclass(frozen=True)
class ShrinkOutput:
    """The last falsifying example block (None if there is none) and the shim's verdict line."""

    falsifying_example: str | None
    did_not_reproduce: bool


def _marker_like(line: str) -> bool:
    stripped = line.strip()
    return stripped.startswith("===") and stripped.endswith("===")


def format_falsifying_example(example: str) -> str:
    """The block the shim prints for ``example``: markers around it, bounded, no fake markers."""
    if len(example) > MAX_EXAMPLE_CHARS:
        example = example[:MAX_EXAMPLE_CHARS] + _TRUNCATED_SUFFIX
    # A repr or a note can hold any line: escape the ones that would read as a marker, here
    # and for harnesses.pytraceback, so the block cannot be ended or spoofed from inside.
    lines = ["\\" + line if _marker_like(line) else line for line in example.split("\n")]
    return "\n".join([FALSIFYING_EXAMPLE_MARKER, *lines, END_FALSIFYING_EXAMPLE_MARKER])


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _printable(text: str) -> str:
    """``text`` with control characters and lone surrogates shown as Python escapes."""
    return "".join(c if c.isprintable() or c in "\n\t" else _escape(c) for c in text)


def parse_shrink_output(text: str) -> ShrinkOutput:
    """The falsifying example and the "did not reproduce" verdict in the shim's output."""
    if len(text) > MAX_TEXT_CHARS:
        half = MAX_TEXT_CHARS // 2
        text = text[:half] + "\n" + text[-half:]
    lines = text.split("\n")
    opened: int | None = None
    block: tuple[int, int] | None = None
    did_not_reproduce = False
    for index, line in enumerate(lines):
        # Markers are whole lines as the shim prints them; an indented one is content.
        bare = line.rstrip()
        if bare == FALSIFYING_EXAMPLE_MARKER:
            opened = index + 1
        elif bare == END_FALSIFYING_EXAMPLE_MARKER and opened is not None:
            block, opened = (opened, index), None
        elif bare == DID_NOT_REPRODUCE_MARKER:
            did_not_reproduce = True
    if block is None:
        return ShrinkOutput(None, did_not_reproduce)
    limit = MAX_EXAMPLE_CHARS + len(_TRUNCATED_SUFFIX)
    example = "\n".join(line.removesuffix("\r") for line in lines[block[0] : block[1]])
    # Escaping can only lengthen the text: bound it before and after.
    example = _printable(example[: limit + 1])
    if len(example) > limit:
        example = example[:MAX_EXAMPLE_CHARS] + _TRUNCATED_SUFFIX
    return ShrinkOutput(example, did_not_reproduce)
