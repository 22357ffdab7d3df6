"""Which characters a string from outside (an API field, a query or path parameter, a command-line
option) may hold. Control characters are refused everywhere: PostgreSQL cannot store NUL in text or
JSON (the insert or the query fails after the request was accepted), and the others end up in logs,
terminals and the dashboard. Free text (a reason, a name) may hold tabs and line breaks; identifiers,
filters and symbols may not. Lone surrogates (from a JSON `\\ud800` escape) cannot be encoded to
UTF-8 by any store, so they are refused with them."""

from __future__ import annotations

import re

from mlops.errors import InvalidRequestError

_CONTROL = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff"
_FREE_TEXT = re.compile(f"[{_CONTROL}]")
_SINGLE_LINE = re.compile(f"[\t\n\r{_CONTROL}]")

# The same rule as a JSON-schema pattern (documented in OpenAPI; generators of invalid input use it).
# Surrogates are left out: they cannot be written in an ECMA regex over UTF-16 code points portably.
FREE_TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
SINGLE_LINE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"


def control_character(value: str, *, multiline: bool = False) -> str | None:
    """A description of the first refused character in `value` (`U+0000 at position 3`), or None."""
    found = (_FREE_TEXT if multiline else _SINGLE_LINE).search(value)
    if found is None:
        return None
    return f"U+{ord(found.group()):04X} at position {found.start()}"


def check_text(value: str, *, field: str, multiline: bool = False) -> str:
    """`value` itself, or InvalidRequestError naming `field` and the character."""
    problem = control_character(value, multiline=multiline)
    if problem is not None:
        allowed = " (tabs and line breaks are allowed)" if multiline else ""
        raise InvalidRequestError(f"{field}: control characters are not accepted{allowed}; found {problem}")
    return value
