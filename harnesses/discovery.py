"""Discovery: which harnesses exist at a commit, found by reading the source, never running it.

A cheap byte prefilter decides which files are worth parsing (a harness must mention
``atheris``/``TestOneInput``, or be a test file mentioning ``given``); only those are parsed.
The prefilter only ever drops files the AST rules would reject too, so results are the same
as parsing everything (``bench/discovery.py`` checks both).
"""

from __future__ import annotations

import ast
import fnmatch
import posixpath
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

from harnesses.astscan import hypothesis_tests, is_atheris_script, is_test_file
from harnesses.config import TargetConfig, parse_pyproject
from harnesses.model import Collection, Harness, HarnessKind, HarnessOptions, Skipped, SkipReason
from harnesses.tree import SourceTree, TreeFile, skipped_dir

MAX_FILE_BYTES = 1_000_000
MAX_PYPROJECT_BYTES = 1_000_000


@dataclass(frozen=True)
class _Scan:
    harnesses: list[Harness]
    skipped: list[Skipped]


@dataclass(frozen=True)
class _Reader:
    """The tree of one commit with its file index and the size cap."""

    tree: SourceTree
    files: dict[str, TreeFile]
    max_bytes: int


def discover(
    tree: SourceTree, *, max_file_bytes: int = MAX_FILE_BYTES, prefilter: bool = True
) -> Collection:
    """Every harness in ``tree`` and every file considered but skipped, with reasons.

    ``[tool.fuzzorch]`` in the root ``pyproject.toml`` wins over discovery; a malformed
    configuration raises ConfigError naming the key and the value.
    """
    files = {f.path: f for f in tree.files() if _walkable(f.path)}
    reader = _Reader(tree, files, max_file_bytes)
    config = _config(tree, files)
    scan = _Scan([], [])
    if config.discover:
        for entry in sorted(files.values(), key=lambda f: f.path):
            if entry.path.endswith(".py") and not _excluded(entry.path, config.exclude):
                _scan_file(reader, entry, scan, prefilter=prefilter)
    harnesses = {h.name: _with_defaults(h, config.defaults) for h in scan.harnesses}
    skipped = {s.name: s for s in scan.skipped}
    _apply_configured(reader, config, harnesses, skipped)
    return Collection(
        harnesses=tuple(sorted(harnesses.values(), key=lambda h: h.name)),
        skipped=tuple(sorted(skipped.values(), key=lambda s: s.name)),
        install=config.install,
        configured=config.present,
    )


def _walkable(path: str) -> bool:
    return not any(skipped_dir(part) for part in path.split("/")[:-1])


def _excluded(path: str, patterns: Iterable[str]) -> bool:
    for pattern in patterns:
        if fnmatch.fnmatchcase(path, pattern) or path.startswith(pattern.rstrip("/") + "/"):
            return True
    return False


def _config(tree: SourceTree, files: dict[str, TreeFile]) -> TargetConfig:
    entry = files.get("pyproject.toml")
    if entry is None or entry.symlink_target is not None:
        return parse_pyproject(None)
    return parse_pyproject(tree.read(entry.path, MAX_PYPROJECT_BYTES))


def _scan_file(reader: _Reader, entry: TreeFile, scan: _Scan, *, prefilter: bool) -> None:
    source = _read_source(reader, entry, scan.skipped)
    if source is None:
        return
    data, path = source, entry.path
    atheris_hint = b"atheris" in data or b"TestOneInput" in data
    given_hint = is_test_file(path) and b"given" in data
    if prefilter and not (atheris_hint or given_hint):
        return
    module = _parse(path, data, scan.skipped, report=atheris_hint or given_hint)
    if module is None:
        return
    if is_atheris_script(module, path):
        scan.harnesses.append(Harness(path, HarnessKind.ATHERIS, path))
    if is_test_file(path):
        for test in hypothesis_tests(module):
            name = f"{path}::{test.qualname}"
            if test.unsupported is None:
                scan.harnesses.append(Harness(name, HarnessKind.HYPOTHESIS, path))
            else:
                scan.skipped.append(Skipped(name, path, SkipReason.UNSUPPORTED, test.unsupported))


def _read_source(reader: _Reader, entry: TreeFile, skipped: list[Skipped]) -> bytes | None:
    """The file's bytes (a symlink's target's), or None after recording why not."""
    target = entry
    if entry.symlink_target is not None:
        resolved = _resolve_link(entry)
        if resolved is None:
            skipped.append(
                Skipped(
                    entry.path,
                    entry.path,
                    SkipReason.SYMLINK_OUTSIDE,
                    f"a symlink to {entry.symlink_target!r}, outside the repository",
                )
            )
            return None
        found = reader.files.get(resolved)
        if found is None or found.symlink_target is not None:
            return None  # dangling, or a chain of links: nothing we would run
        target = found
    max_bytes = reader.max_bytes
    if target.size > max_bytes:
        skipped.append(
            Skipped(
                entry.path,
                entry.path,
                SkipReason.TOO_LARGE,
                f"{target.size} bytes; discovery reads files up to {max_bytes} bytes",
            )
        )
        return None
    return reader.tree.read(target.path, max_bytes)


def _resolve_link(entry: TreeFile) -> str | None:
    link = entry.symlink_target or ""
    if link.startswith("/"):
        return None
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(entry.path), link))
    if resolved == ".." or resolved.startswith("../") or resolved.startswith("/"):
        return None
    return resolved


def _parse(path: str, data: bytes, skipped: list[Skipped], *, report: bool) -> ast.Module | None:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if report:
            skipped.append(
                Skipped(path, path, SkipReason.NOT_UTF8, f"invalid UTF-8 at byte {exc.start}")
            )
        return None
    try:
        with warnings.catch_warnings():
            # Invalid escape sequences in hostile sources must not turn into errors.
            warnings.simplefilter("ignore")
            return ast.parse(text, filename=path)
    except SyntaxError as exc:
        if report:
            detail = f"line {exc.lineno}: {exc.msg}" if exc.lineno else str(exc.msg)
            skipped.append(Skipped(path, path, SkipReason.SYNTAX_ERROR, detail[:500]))
    except (ValueError, RecursionError, MemoryError) as exc:
        if report:
            skipped.append(Skipped(path, path, SkipReason.SYNTAX_ERROR, str(exc)[:500]))
    return None


def _with_defaults(harness: Harness, defaults: HarnessOptions) -> Harness:
    if not defaults.to_json():
        return harness
    merged = HarnessOptions(**{**defaults.to_json(), **harness.options.to_json()})
    return Harness(harness.name, harness.kind, harness.path, merged)


def _apply_configured(
    reader: _Reader,
    config: TargetConfig,
    harnesses: dict[str, Harness],
    skipped: dict[str, Skipped],
) -> None:
    """Configured harnesses replace or add to what discovery found."""
    for entry in config.harnesses:
        harnesses.pop(entry.name, None)
        skipped.pop(entry.name, None)
        if not entry.enabled:
            skipped[entry.name] = Skipped(
                entry.name, entry.path, SkipReason.DISABLED, "enabled = false in [tool.fuzzorch]"
            )
            continue
        problem = _configured_problem(reader, entry.path, entry.name, is_test=entry.is_test)
        if problem is not None:
            skipped[entry.name] = problem
            continue
        kind = HarnessKind.HYPOTHESIS if entry.is_test else HarnessKind.ATHERIS
        harnesses[entry.name] = Harness(entry.name, kind, entry.path, entry.options)


def _configured_problem(reader: _Reader, path: str, name: str, *, is_test: bool) -> Skipped | None:
    entry = reader.files.get(path)
    if entry is None:
        return Skipped(
            name, path, SkipReason.UNSUPPORTED, f"configured, but {path!r} does not exist here"
        )
    problems: list[Skipped] = []
    data = _read_source(reader, entry, problems)
    module = None if data is None else _parse(path, data, problems, report=True)
    if module is None:
        if problems:
            reason = problems[0]
            return Skipped(name, path, reason.reason, reason.detail)
        return Skipped(name, path, SkipReason.UNSUPPORTED, f"{path!r} cannot be read")
    if is_test:
        qualname = name.split("::", 1)[1]
        tests = {t.qualname: t for t in hypothesis_tests(module)}
        test = tests.get(qualname)
        if test is None:
            return Skipped(
                name, path, SkipReason.UNSUPPORTED, f"no @given test {qualname!r} in {path!r}"
            )
        if test.unsupported is not None:
            return Skipped(name, path, SkipReason.UNSUPPORTED, test.unsupported)
    return None
