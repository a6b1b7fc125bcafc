"""Whether a hunt's regex could match a character that JSON text escapes.

Python has no public parser of its regular expressions, and this question (could any match
hold a quote, a backslash or a control character?) needs the parsed pattern: `needs_unescape`
reads it with the standard library's private `re._parser`, kept to this one module. Its
answer only spares work (a batch whose matches cannot involve an escaped character is
scanned without undoing the escapes first); anything not understood, or a parser that is
gone or changed shape in a later Python, answers yes, which is always correct.
"""

from __future__ import annotations

import re
from typing import Any

_ESCAPED = frozenset({ord('"'), ord("\\"), *range(32)})


def _can_match_escaped(tree: Any) -> bool:
    """Whether a parsed regex could match a character that JSON text escapes (a quote, a
    backslash, a control character): only then must a batch be unescaped before the scan.
    Anything not understood counts as yes."""
    for op, arg in tree:
        name = str(op)
        if name == "LITERAL":
            if arg in _ESCAPED:
                return True
        elif name == "IN":
            if _class_can_match_escaped(arg):
                return True
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            if _can_match_escaped(arg[2]):
                return True
        elif name == "SUBPATTERN":
            if _can_match_escaped(arg[3]):
                return True
        elif name == "BRANCH":
            if any(_can_match_escaped(branch) for branch in arg[1]):
                return True
        elif name in ("ASSERT", "ASSERT_NOT"):
            if _can_match_escaped(arg[1]):
                return True
        elif name == "ATOMIC_GROUP":
            if _can_match_escaped(arg):
                return True
        elif name != "AT":
            return True  # ANY, NOT_LITERAL, GROUPREF, ...: assume it can
    return False


def _class_can_match_escaped(items: Any) -> bool:
    for item_op, item in items:
        kind = str(item_op)
        if kind == "LITERAL" and item in _ESCAPED:
            return True
        if kind == "RANGE" and any(item[0] <= c <= item[1] for c in (0, 31, 0x22, 0x5C)):
            return True
        if kind == "CATEGORY" and str(item) not in ("CATEGORY_DIGIT", "CATEGORY_WORD"):
            return True
        if kind == "NEGATE":
            return True
    return False


def needs_unescape(regex: re.Pattern[str]) -> bool:
    """Whether matches of `regex` may involve characters that JSON escapes."""
    try:
        tree = re._parser.parse(regex.pattern, regex.flags)  # type: ignore[attr-defined]
        return _can_match_escaped(tree)
    except (AttributeError, TypeError, ValueError, IndexError, re.error):  # a changed parser
        return True
