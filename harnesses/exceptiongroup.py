"""The boxes Python 3.11 draws around exception groups, taken apart one level at a time.

A group printed at margin column ``c`` looks like this (``c`` = 2 at the top level)::

      + Exception Group Traceback (most recent call last):
      |   File "x.py", line 3, in <module>
      | ExceptionGroup: several (2 sub-exceptions)
      +-+---------------- 1 ----------------
        | ValueError: 1                        <- sub-exception 1, margin at c + 2
        +---------------- 2 ----------------
        | TypeError: 2
        +------------------------------------

A nested group's own lines sit at its margin and its sub-exceptions two columns further.
The interpreter's printer leaves the continuation lines of a multi-line message without a
margin (``traceback.print_exception`` adds one); both are accepted. Only sub-exception 1 is
extracted: the parser follows the first leaf (see ``harnesses.pytraceback``).
"""

from __future__ import annotations


def _margin(line: str, column: int) -> bool:
    """Whether ``line`` has only spaces before ``column``."""
    return len(line) > column and not line[:column].strip(" ")


def _content(line: str, column: int) -> str:
    """A box line's text without its margin (``| `` or the header's ``+ ``)."""
    if line[column + 1 : column + 2] == " ":
        return line[column + 2 :]
    return line[column + 1 :]


def unbox_first_sub(lines: list[str], column: int) -> tuple[list[str], list[str] | None]:
    """Split a box at ``column`` into its own text and its sub-exception 1 (None if a leaf).

    The own text is unboxed (margins removed); sub-exception 1 keeps its margin at
    ``column + 2`` so that it can be taken apart the same way.
    """
    own: list[str] = []
    sub_start = -1
    for index, line in enumerate(lines):
        if _margin(line, column) and line.startswith("+-+", column):
            sub_start = index + 1
            break
        if _margin(line, column) and line[column] in "|+":
            own.append(_content(line, column))
        else:
            # A continuation line of a multi-line message, printed without its margin.
            own.append(line)
    if sub_start < 0:
        return own, None
    sub: list[str] = []
    for line in lines[sub_start:]:
        # "+--" at the sub's margin is the next sibling's header or the closing rule, while
        # a nested group's own sub-exceptions open with "+-+".
        if _margin(line, column + 2) and line.startswith("+--", column + 2):
            break
        sub.append(line)
    return own, sub
