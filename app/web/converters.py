"""URL converters for every route: what a path segment may hold is decided once, before any view runs.

``<int:...>`` is a database id: ASCII digits up to PostgreSQL's ``integer``, so an id past it is a 404 like
any missing row instead of an overflow in the query. ``<name>`` and ``<path:...>`` never hold a control
character (NUL cannot even be stored in PostgreSQL text), so such a path is a 404 too.
"""

from werkzeug.datastructures import ImmutableDict
from werkzeug.routing import IntegerConverter, Map, PathConverter, UnicodeConverter

MAX_ID = 2**31 - 1  # PostgreSQL integer, the type of every id column
_NO_CONTROLS = "\\x00-\\x1f\\x7f"


class DatabaseId(IntegerConverter):
    regex = r"[0-9]+"  # not \d, which also matches other scripts' digits

    def __init__(self, map, fixed_digits: int = 0, min: int | None = 1, max: int | None = MAX_ID) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max)


class Text(UnicodeConverter):
    def __init__(self, map, minlength: int = 1, maxlength: int | None = None, length=None) -> None:
        super().__init__(map, minlength=minlength, maxlength=maxlength, length=length)
        self.regex = self.regex.replace("[^/]", f"[^/{_NO_CONTROLS}]")


class Path(PathConverter):
    regex = f"[^/{_NO_CONTROLS}][^{_NO_CONTROLS}]*?"


class RouteMap(Map):
    """The app's URL map (``Flask.url_map_class``), so even the static route Flask adds first uses these."""

    default_converters = ImmutableDict(
        {**Map.default_converters, "default": Text, "string": Text, "int": DatabaseId, "path": Path}
    )
