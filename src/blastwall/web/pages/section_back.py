"""Where an action of an incident page's section sends the browser afterwards: back to the
page the form was on (the incident page, or the section's own page), never elsewhere."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request


def back(request: Request, *, incident_id: int, section: str, anchor: str = "") -> str:
    """The incident's page the form was sent from (htmx's `HX-Current-URL`, else the
    `Referer`), when it is one of this incident's; otherwise the section's own page. Only
    the path is kept, so that no header can send the browser to another site."""
    own = f"/ui/incidents/{incident_id}"
    for header in ("HX-Current-URL", "Referer"):
        path = urlsplit(request.headers.get(header, "")).path
        if path == own or path == f"{own}/{section}":
            return f"{path}{anchor}"
    return f"{own}/{section}{anchor}"
