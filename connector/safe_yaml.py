"""Parsing a config file that may be hostile: bounded, and every refusal names the line.

ruamel.yaml composes aliases as shared nodes, so a 1 KB "billion laughs" file loads cheaply and only explodes
when the tree is walked (`config._plain`, pydantic): by then it is millions of nodes and gigabytes. The
composer here counts the nodes the document *expands* to while it is composed and stops at the alias that
crosses `MAX_EXPANDED_NODES`, before anything walks the tree. It also refuses a cycle (an alias inside its own
anchor), nesting deeper than `MAX_DEPTH` (the composer and every walker recurse), and explicit tags other than
the core ones: `!env X` or `!!python/object` would otherwise become objects no config field expects, or be
accepted silently where a field takes any value.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import TaggedScalar
from ruamel.yaml.composer import Composer, MaxDepthExceededError
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent
from ruamel.yaml.reader import ReaderError

# A large real config (20 sources, big value maps) is a few thousand nodes; a bomb is millions.
MAX_EXPANDED_NODES = 100_000
# Conditions nest all/any/not a handful of levels; thousands only come from a hostile file.
MAX_DEPTH = 100
CORE_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq")
)


class YamlProblem(Exception):
    """The file cannot be read as a config: `line` (1-based, None if unknown) and a readable reason."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _BoundedComposer(Composer):
    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self.expanded = 0  # nodes the document expands to so far, every alias counted as a full copy
        self.sizes: dict[int, int] = {}  # id(anchored node) -> its expanded size, once composed

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        line = event.start_mark.line + 1
        if isinstance(event, AliasEvent):
            target = self.anchors.get(event.anchor)
            if target is not None:
                size = self.sizes.get(id(target))
                if size is None:
                    raise YamlProblem(
                        line, f"alias *{event.anchor} refers to a node that contains it (a cycle)"
                    )
                self._count(size, line, f"alias *{event.anchor}")
            return super().compose_node(parent, index)  # an undefined alias: ruamel's own error
        if isinstance(event, ScalarEvent | CollectionStartEvent):
            tag = event.tag
            if tag is not None and tag != "!" and tag not in CORE_TAGS:
                shown = tag.replace("tag:yaml.org,2002:", "!!")
                raise YamlProblem(line, f"tag {shown} is not supported (values are plain YAML)")
        before = self.expanded
        self._count(1, line, "this node")
        node = super().compose_node(parent, index)
        if event.anchor is not None:
            self.sizes[id(node)] = self.expanded - before
        return node

    def _count(self, nodes: int, line: int, what: str) -> None:
        self.expanded += nodes
        if self.expanded > MAX_EXPANDED_NODES:
            raise YamlProblem(
                line,
                f"{what} makes the document expand to more than {MAX_EXPANDED_NODES:,} nodes "
                "(aliases repeat their anchor's whole content)",
            )


class _CheckedConstructor(RoundTripConstructor):
    def construct_object(self, node: Any, deep: bool = False) -> Any:
        # A scalar the resolver typed but Python refuses (2026-02-30, an int of 5,000 digits) raises plain
        # ValueError without a position; give it the node's line.
        try:
            value = super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:
            reason = str(exc).split(";")[0]  # not Python's advice to raise its digit limit
            raise YamlProblem(node.start_mark.line + 1, f"{node.value!s:.40}: {reason}") from None
        if isinstance(value, TaggedScalar):
            # round-trip mode keeps an explicit `!!str 0012` as a TaggedScalar; the config wants the string
            return str(value.value)
        return value


def decode(data: bytes) -> str:
    """The file's text; config files are UTF-8 (a BOM is allowed), anything else is refused with its line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise YamlProblem(line, f"not UTF-8 (byte 0x{data[exc.start]:02x}: {exc.reason})") from None


def load(text: str) -> Any:
    """The YAML document as ruamel's round-trip tree (with positions), or `YamlProblem`."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    yaml.max_depth = MAX_DEPTH
    yaml.Composer = _BoundedComposer
    yaml.Constructor = _CheckedConstructor
    try:
        return yaml.load(text)
    except MaxDepthExceededError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        raise YamlProblem(line, f"nested more than {MAX_DEPTH} levels deep") from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = str(exc.problem or "")
        if exc.context_mark is not None and problem.startswith(OPENED_EARLIER):
            # the parser notices these lines later (the next key, the end of the file); the mistake is where
            # the key or the bracket began
            mark = exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise YamlProblem(line, f"YAML: {explain(str(exc.problem or exc.context))}") from None
    except ReaderError as exc:
        # a character YAML does not allow (NUL, most control characters); `position` counts characters
        line = text.count("\n", 0, exc.position) + 1
        raise YamlProblem(line, f"YAML: character #x{exc.character:04x} is not allowed") from None
    except YAMLError as exc:
        raise YamlProblem(None, f"YAML: {exc}") from None


OPENED_EARLIER = ("could not find expected ':'", "expected ',' or", "found unexpected end of stream")

# The parser's own words name a token, not the mistake; these say what an admin most likely did. The parser's
# text stays in brackets for the rare case the guess is wrong.
EXPLANATIONS = (
    (
        "cannot start any token",
        "'\\t'",
        "a tab character: YAML indents with spaces only, replace the tab by spaces",
    ),
    (
        "mapping values are not allowed here",
        "",
        "a 'key:' where none can start: this line is indented deeper than the key above it, or a value that "
        "holds ': ' needs quotes",
    ),
    (
        "expected <block end>, but found",
        "",
        "the indentation of this line does not line up with the lines above (the keys of one mapping, and the "
        "'-' of each item of one list, start in the same column)",
    ),
    (
        "could not find expected ':'",
        "",
        "a line inside a mapping without 'key: value' (or a quote left open)",
    ),
    (
        "expected ',' or '}'",
        "",
        "a {...} mapping is not closed, or two of its entries lack a ',' between them",
    ),
    ("expected ',' or ']'", "", "a [...] list is not closed, or two of its items lack a ',' between them"),
    ("found unexpected end of stream", "", "a quoted value is not closed"),
    ("tab character", "", "a tab character: YAML indents with spaces only, replace the tab by spaces"),
)


def explain(problem: str) -> str:
    """The parser's complaint, with what it most likely means in front."""
    for needle, also, meaning in EXPLANATIONS:
        if needle in problem and also in problem:
            return f"{meaning} (parser: {problem})"
    return problem
