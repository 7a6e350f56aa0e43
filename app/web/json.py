"""The one JSON parser for request bodies (``app.json``): a body nested deeper than any form of the app
needs is a 400, not a ``RecursionError`` deep in the decoder."""

from flask.json.provider import DefaultJSONProvider

MAX_DEPTH = 32  # a booking is one object of scalars; nothing the app accepts nests further than this


def depth(value) -> int:
    """How deeply lists and objects nest in ``value`` (a scalar is 0); iterative, so it cannot recurse."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in children)
    return deepest


class GuardedJSONProvider(DefaultJSONProvider):
    def loads(self, s: str | bytes, **kwargs):
        """Parse JSON; ValueError (which Flask answers with 400) when it nests more than ``MAX_DEPTH``."""
        try:
            value = super().loads(s, **kwargs)
        except RecursionError:  # the decoder gave up at the interpreter's recursion limit
            raise ValueError("JSON nested too deeply") from None
        if depth(value) > MAX_DEPTH:
            raise ValueError("JSON nested too deeply")
        return value
