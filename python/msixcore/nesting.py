"""How deep a user's document may nest: the one check every input path asks.

Scenario files, sweep specs, ``--set`` values and dicts handed to the API are
walked before anything recursive (``repr``, ``copy.deepcopy``, ``json.dumps``)
touches them, so a document nested thousands deep is one
``InvalidArgument`` line instead of a ``RecursionError`` traceback. No real
config nests past a handful of levels (``devices[0].program[1].action.op`` is
five).
"""

from __future__ import annotations

from collections.abc import Mapping

from msixcore._core import InvalidArgument

__all__ = ["MAX_DEPTH", "check_depth"]

MAX_DEPTH = 32
"""Deepest nesting of tables/lists accepted in any user document."""


def check_depth(value: object, where: str) -> None:
    """Raise ``InvalidArgument`` (``{where}: nested deeper than …``) if
    ``value`` holds containers more than :data:`MAX_DEPTH` deep. Iterative and
    linear: each container is walked once, so cycles end too."""
    seen: set[int] = set()
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Mapping):
            children: list[object] = list(node.values())
        elif isinstance(node, list | tuple):
            children = list(node)
        else:
            continue
        if depth >= MAX_DEPTH:
            raise InvalidArgument(f"{where}: nested deeper than {MAX_DEPTH} levels")
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend((c, depth + 1) for c in children)
