"""Where an action of an incident page's section sends the browser afterwards: back to the
page the form was on (the incident page, or the section's own page), never elsewhere. One
rule for every section."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request


def back(request: Request, *, incident_id: int, section: str, anchor: str | None = None) -> str:
    """The incident's page the form was sent from (htmx's `HX-Current-URL`, else the
    `Referer`, which browsers send on a plain form too), when it is one of this incident's;
    otherwise the section's own page. `anchor` (`#update-3`) is kept on either; without one,
    the incident page is shown at the section. Only the path is kept, so that no header can
    send the browser to another site."""
    own = f"/ui/incidents/{incident_id}"
    for header in ("HX-Current-URL", "Referer"):
        path = urlsplit(request.headers.get(header, "")).path
        if path == own:
            return f"{own}{anchor if anchor is not None else '#' + section}"
        if path == f"{own}/{section}":
            return f"{path}{anchor or ''}"
    return f"{own}/{section}{anchor or ''}"
