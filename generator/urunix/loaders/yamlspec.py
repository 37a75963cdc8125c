"""YAML specs (`*.yaml`, `*.yml`): the same schema as args.nix, e.g.

    name: urunc/prebuilt/redis-rumprun-hvt
    tag: test
    files:
      ./redis.hvt: /unikernel/redis.hvt
    annotations:
      unikernelType: rumprun
      cmdline: "redis-server /data/conf/redis.conf"

`files` is a mapping of source to target, exactly as in args.nix (one
schema, no "src:dst" list form). Strings are kept byte for byte; scalars YAML
reads as non-strings (`useDMBlock: true`, `tag: 1.0`) stay raw for validate.

pyyaml silently keeps the last of two equal keys; we compose the node tree
with a SafeLoader subclass and walk it ourselves, so duplicate keys are
refused and every key's line is known. Aliases and merge keys (`<<`) work;
other tags (sets, ordered maps, custom tags) are refused as not plain data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..errors import SpecError
from ..spec import Spec, display_path
from ._common import build_spec, read_text
from .nixdata import dotted

MAX_DEPTH = 100
MAX_NODES = 100_000  # aliases can multiply a small file (billion laughs)

_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"

if TYPE_CHECKING:  # the mixin below always comes with a SafeLoader, whose methods it calls
    _LoaderMixin: Any = yaml.SafeLoader  # (pyyaml has no types: Any)
else:
    _LoaderMixin = object


class _Plain(_LoaderMixin):
    """Builds plain data from the composed node tree while recording, for
    every key and list item, its line (1-based), and for every scalar its
    text as written (bunny reads some fields as text)."""

    def _setup(self, file: Path) -> None:
        self.file = file
        self.lines: dict[str, int] = {}
        self.texts: dict[str, str] = {}
        self.visited = 0
        self.depth = 0

    def fail(
        self, message: str, node: yaml.Node | yaml.Event | None, field: str | None = None, hint: str | None = None, **extra: Any
    ) -> SpecError:
        line = node.start_mark.line + 1 if node is not None else None
        return SpecError(message, file=display_path(self.file), line=line, field=field or None, hint=hint, **extra)

    def data(self) -> Any:
        try:
            node = self.get_single_node()
        except yaml.MarkedYAMLError as e:
            raise syntax_error(e, self.file) from None
        except yaml.YAMLError as e:
            raise SpecError(f"YAML error: {e}", file=display_path(self.file)) from None
        if node is None:
            return None
        return self.plain(node, (), 0)

    def plain(self, node: yaml.Node, path: tuple[str | int, ...], depth: int) -> Any:
        self.visited += 1
        if depth > MAX_DEPTH or self.visited > MAX_NODES:
            raise self.fail("the YAML is nested too deeply or expands too much (aliases)", node, dotted(path))
        if isinstance(node, yaml.MappingNode):
            if node.tag != _MAP:
                raise self.fail(f"the YAML tag {node.tag} is not plain data", node, dotted(path))
            return self.mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                raise self.fail(f"the YAML tag {node.tag} is not plain data", node, dotted(path))
            out = []
            for i, item in enumerate(node.value):
                self.lines.setdefault(dotted(path + (i,)), item.start_mark.line + 1)
                out.append(self.plain(item, path + (i,), depth + 1))
            return out
        try:
            value = self.construct_object(node, deep=True)
        except yaml.YAMLError as e:
            raise self.fail(f"cannot read this YAML value: {getattr(e, 'problem', None) or e}", node, dotted(path)) from None
        except (ValueError, TypeError, AttributeError, OverflowError) as e:
            # pyyaml's own constructors fail this way on e.g. `!!timestamp ''`
            # or a date out of range: still the file's fault
            raise self.fail(f"cannot read this YAML value ({node.tag}: {e})", node, dotted(path)) from None
        if path:
            self.texts[dotted(path)] = node.value
        return value

    def mapping(self, node: yaml.MappingNode, path: tuple[str | int, ...], depth: int) -> dict[str, Any]:
        explicit: dict[str, Any] = {}
        seen: dict[str, int] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                for k, v in self.merge_sources(value_node, path, depth).items():
                    merged.setdefault(k, v)
                continue
            key = self.key(key_node, path)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise self.fail(
                    f"the key {key!r} appears twice (first on line {seen[key]})",
                    key_node,
                    dotted(path + (key,)),
                    hint="YAML keeps only the last one; remove one of them",
                )
            seen[key] = line
            self.lines[dotted(path + (key,))] = line
            explicit[key] = self.plain(value_node, path + (key,), depth + 1)
        for k, v in merged.items():
            explicit.setdefault(k, v)
        for k, line in seen.items():  # a merged source walked later must not move them
            self.lines[dotted(path + (k,))] = line
        return explicit

    def merge_sources(self, node: yaml.Node, path: tuple[str | int, ...], depth: int) -> dict[str, Any]:
        """`<<: *a` or `<<: [*a, *b]`: earlier sources win, explicit keys win over all."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        out: dict[str, Any] = {}
        for src in sources:
            if not isinstance(src, yaml.MappingNode):
                raise self.fail("a merge key (<<) needs a mapping or a list of mappings", src, dotted(path))
            for k, v in self.plain(src, path, depth + 1).items():
                out.setdefault(k, v)
        return out

    def key(self, key_node: yaml.Node, path: tuple[str | int, ...]) -> str:
        if isinstance(key_node, yaml.ScalarNode):
            try:
                key = self.construct_object(key_node, deep=True)
            except (yaml.YAMLError, ValueError, TypeError, AttributeError, OverflowError):
                key = None
            if isinstance(key, str):
                return key
        raise self.fail(
            "keys must be strings",
            key_node,
            dotted(path),
            value=getattr(key_node, "value", None),
            hint="quote the key (YAML reads 1, true, yes or null as non-strings)",
        )


class LineLoader(_Plain, yaml.SafeLoader):
    """The pure-Python reader: bounds the nesting while it composes."""

    def __init__(self, stream: str, file: Path):
        yaml.SafeLoader.__init__(self, stream)
        self._setup(file)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        # pyyaml composes nested collections recursively: bound the depth here,
        # before Python's own recursion limit turns a deep file into a crash.
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH + 1:
                raise self.fail(f"the YAML is nested more than {MAX_DEPTH} levels deep", self.peek_event())
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


_C = getattr(yaml, "CSafeLoader", None)
_CLoader: Any = _C or yaml.SafeLoader


class CLineLoader(_Plain, _CLoader):
    """libyaml's parser and composer (some 20 times faster than pyyaml's
    Python parser on a spec of 10,000 files), used only once an event
    scan has shown the nesting is within bounds (its composer recurses in C)."""

    def __init__(self, stream: str, file: Path):
        _CLoader.__init__(self, stream)
        self._setup(file)


def _nesting_ok(text: str) -> bool:
    """libyaml's (iterative) event stream, nesting counted: the C composer
    may take it. False (use the Python reader, which says what is wrong) on
    any doubt."""
    depth = 0
    try:
        for e in yaml.parse(text, Loader=_C):
            if isinstance(e, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    return False
            elif isinstance(e, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        return False
    return True


def syntax_error(e: yaml.MarkedYAMLError, file: Path) -> SpecError:
    mark = e.problem_mark or e.context_mark
    problem = e.problem or "invalid YAML"
    if e.context:
        problem = f"{e.context}: {problem}" if "expected" not in problem else f"{problem} ({e.context})"
    col = f" (column {mark.column + 1})" if mark else ""
    return SpecError(
        f"YAML syntax error: {problem}{col}",
        file=display_path(file),
        line=mark.line + 1 if mark else None,
        hint="check the indentation and the quoting on this line and the one before",
    )


def read_yaml(text: str, file: Path) -> tuple[Any, dict[str, int], dict[str, str]]:
    """(value, {field: line}, {field: scalar text as written}) of one YAML document."""
    try:
        # pyyaml's reader checks every character up front (libyaml takes
        # some it refuses): the same rule, whichever parser reads the text
        loader = LineLoader(text, file)
        if _C is not None and _nesting_ok(text):
            loader.dispose()
            loader = CLineLoader(text, file)
    except yaml.reader.ReaderError as e:  # a control character: pyyaml checks the whole text up front
        line = text.count("\n", 0, e.position) + 1
        raise SpecError(
            f"YAML cannot hold the character {chr(e.character)!r} (U+{e.character:04X})",
            file=display_path(file),
            line=line,
            hint='write it as an escape inside a double-quoted string, e.g. "\\x1f"',
        ) from None
    try:
        return loader.data(), loader.lines, loader.texts
    except yaml.reader.ReaderError as e:
        raise SpecError(f"YAML cannot hold the character U+{e.character:04X}", file=display_path(file)) from None
    finally:
        loader.dispose()


def load(path: Path) -> Spec:
    value, lines, _ = read_yaml(read_text(path), path)
    if value is None:
        raise SpecError("the spec file is empty", file=display_path(path), hint="see the README for a YAML spec example")
    return build_spec(value, lines, path, "yaml")
