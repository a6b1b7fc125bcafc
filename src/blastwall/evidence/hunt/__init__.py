"""Retro-hunt: search every stored interaction's content for an attack's pattern or a leaked
value.

Method. Interactions are read in windows of `BATCH` ids. For each window the database
joins each content field of the rows (inputs, outputs, tool arguments, tool results — where
retrievals keep the documents they returned), as stored JSON text, into one byte string per
field, in one pass: Python does no per-row work. When the query could match a character
JSON escapes, the escapes of newlines, tabs, quotes and backslashes are undone in place, so
the text inside each JSON string reads as it was sent. Hyperscan scans each string
once with the query compiled in prefilter mode (anchors dropped: a superset of the real
matches). Each row it flags is then decoded and its string values are searched with
Python's `re`, which decides: the hunt's answers are exactly Python's regular-expression
semantics, per string value. A canary hunt looks for the token's shape with its known
prefix and keeps a match only when the token's SHA-256 is the canary's.
"""

from blastwall.evidence.hunt.query import Query, compile_query
from blastwall.evidence.hunt.runner import MAX_MATCHES, run_hunt, run_in_background
from blastwall.evidence.hunt.scan import BATCH, FIELDS, Found, excerpt_around, scan
from blastwall.evidence.hunt.store import create_hunt, get_hunt, list_hunts, list_matches

__all__ = [
    "BATCH",
    "FIELDS",
    "MAX_MATCHES",
    "Found",
    "Query",
    "compile_query",
    "create_hunt",
    "excerpt_around",
    "get_hunt",
    "list_hunts",
    "list_matches",
    "run_hunt",
    "run_in_background",
    "scan",
]
