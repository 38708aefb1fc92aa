"""Reading input safely: a regular file's text within a size limit, and YAML or JSON
parsed into plain data within limits on depth, aliases and size.

Scenario, sweep, model and measured-runs files come from users; these checks make a
runaway or hostile file one clear error naming the file (and the line where known)
instead of a hang, a crash or an object that is not plain data.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, cast

import yaml

from .errors import ClusterSimError, ScenarioError, excerpt

#: Input limits: scenario and sweep files are a few kB; these only stop runaway input.
MAX_INPUT_BYTES = 2**20
MAX_DEPTH = 32  # sections and lists nested inside each other
MAX_ELEMENTS = 20_000  # keys, values, lists and mappings, aliases counted as expanded
MAX_ALIASES = 100  # YAML `*alias` references


def read_text_file(
    path: str | Path, *, limit: int = MAX_INPUT_BYTES, error: type[ClusterSimError] = ScenarioError, what: str = ""
) -> str:
    """The UTF-8 text of a regular file of at most ``limit`` bytes.

    Directories, FIFOs, devices (``/dev/zero``) and paths with a NUL byte are refused
    with one ``error`` naming the path, never read or waited on."""
    what = f"{what} " if what else ""
    shown = excerpt(str(path), 200) if "\0" in str(path) else str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise error(f"{what}{shown}: no such file") from None
    except ValueError:  # embedded NUL byte
        raise error(f"{what}{shown}: a path cannot contain a NUL byte") from None
    except OSError as exc:
        raise error(f"{what}{shown}: cannot read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{what}{shown}: is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{what}{shown}: not a regular file (a device, FIFO or socket)")
    if st.st_size > limit:
        raise error(f"{what}{shown}: file too large ({st.st_size:,} bytes; the limit is {limit:,})")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):  # replaced since the stat
                raise error(f"{what}{shown}: not a regular file")
            raw = fh.read(limit + 1)
    except OSError as exc:
        raise error(f"{what}{shown}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > limit:
        raise error(f"{what}{shown}: file too large (over {limit:,} bytes)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what}{shown}: not UTF-8 text (byte {exc.start})") from None


class _LimitedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with a nesting limit and an alias budget while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        self._nodes = 0

    # peek_event is untyped in the yaml stubs: called through cast(Any, ...).
    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._nodes += 1
        if self._nodes > MAX_ELEMENTS:  # stop early: parsing is the slow part
            raise InputLimit(f"more than {MAX_ELEMENTS:,} elements", cast(Any, self.peek_event)().start_mark)
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise InputLimit(f"more than {MAX_ALIASES} aliases (*name)", cast(Any, self.peek_event)().start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise InputLimit(f"nested more than {MAX_DEPTH} levels deep", cast(Any, self.peek_event)().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class InputLimit(Exception):
    def __init__(self, message: str, mark: Any = None) -> None:
        super().__init__(message)
        self.mark = mark


def _check_node_graph(root: yaml.Node) -> None:
    """Refuse recursive aliases and documents whose aliases expand to too many elements
    (an alias bomb), before anything is constructed."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            children = _children(node)
            size = 1 + sum(sizes[id(c)] for c in children)
            if size > MAX_ELEMENTS:
                raise InputLimit(f"expands to more than {MAX_ELEMENTS:,} elements (aliases included)", node.start_mark)
            sizes[key] = size
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise InputLimit("a recursive alias (an anchor used inside itself)", node.start_mark)
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                raise InputLimit("a recursive alias (an anchor used inside itself)", child.start_mark)
            if id(child) not in sizes:
                stack.append((child, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def safe_yaml(text: str) -> Any:
    """``yaml.safe_load`` with the input limits above (depth, aliases, expanded size)."""
    loader = _LimitedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_node_graph(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


_PLAIN_TYPES = (str, int, float, bool, type(None))
_TYPE_NAMES = {"date": "a date", "datetime": "a date and time", "bytes": "binary data (!!binary)",
               "set": "a set (!!set)", "tuple": "a tuple"}


def check_plain_data(data: Any, source: str, prefix: str = "") -> None:
    """Check that parsed input is plain JSON-like data (mappings with string or integer
    keys, lists, strings, numbers, booleans, null), at most ``MAX_DEPTH`` deep and
    ``MAX_ELEMENTS`` large; a YAML date, ``!!binary`` or ``!!set`` is refused naming
    the field (quote it to make it a string)."""
    count = 0
    stack: list[tuple[Any, str, int]] = [(data, prefix, 0)]
    while stack:
        value, where, depth = stack.pop()
        count += 1
        if count > MAX_ELEMENTS:
            raise ScenarioError(f"{source}: more than {MAX_ELEMENTS:,} elements")
        if depth > MAX_DEPTH:
            raise ScenarioError(f"{source}: {where or 'document'}: nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            for key, child in value.items():
                if isinstance(key, bool) or not isinstance(key, (str, int)):
                    kind = _TYPE_NAMES.get(type(key).__name__, f"a {type(key).__name__}")
                    raise ScenarioError(
                        f"{source}: {where or 'document'}: key {excerpt(str(key))} is {kind}; keys must be names "
                        "(quote it to make it a string)"
                    )
                stack.append((child, f"{where}.{key}" if where else str(key), depth + 1))
        elif isinstance(value, list):
            for i, child in enumerate(value):
                stack.append((child, f"{where}[{i}]", depth + 1))
        elif not isinstance(value, _PLAIN_TYPES):
            kind = _TYPE_NAMES.get(type(value).__name__, f"a {type(value).__name__}")
            raise ScenarioError(
                f"{source}: {where or 'document'}: {kind} is not a valid value here (quote it to make it a string)"
            )


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a finite number")


def value_problem(exc: ValueError) -> str:
    text = " ".join(str(exc).split())
    return "an integer with more than 4,300 digits" if "integer string conversion" in text else excerpt(text, 200)


def parse_data(text: str, source: str, *, as_json: bool = False) -> Any:
    """Parse YAML or JSON text into plain data within the input limits; every problem
    is one :class:`ScenarioError` naming ``source`` (and the line where known)."""
    if len(text) > MAX_INPUT_BYTES:
        raise ScenarioError(f"{source}: input too large ({len(text):,} characters; the limit is {MAX_INPUT_BYTES:,})")
    try:
        if as_json:
            data = json.loads(text, parse_constant=_refuse_constant)
        else:
            data = safe_yaml(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{source}: line {exc.lineno}: malformed JSON: {exc.msg}") from None
    except InputLimit as exc:
        where = f"line {exc.mark.line + 1}: " if exc.mark is not None else ""
        raise ScenarioError(f"{source}: {where}refused: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        problem = " ".join(str(problem).split())  # one line
        raise ScenarioError(f"{source}: {where}malformed {'JSON' if as_json else 'YAML'}: {problem}") from None
    except RecursionError:
        raise ScenarioError(f"{source}: refused: nested too deeply (the limit is {MAX_DEPTH} levels)") from None
    except ValueError as exc:  # a NaN/Infinity constant in JSON, an integer of over 4,300 digits
        raise ScenarioError(f"{source}: malformed {'JSON' if as_json else 'YAML'}: {value_problem(exc)}") from None
    check_plain_data(data, source)
    return data
