"""The blast radius drawn as SVG: the incident's systems on the left, their components in
the middle, the other systems sharing them on the right."""

from __future__ import annotations

from xml.sax.saxutils import escape

from blastwall.triage.schemas import BlastRadius

__all__ = ["to_svg"]

ROW = 28
WIDTH = 760
COLUMNS = (20, 270, 540)
BOX = 200


def _label(text: str, limit: int = 30) -> str:
    return escape(text if len(text) <= limit else text[: limit - 1] + "…")


def to_svg(radius: BlastRadius, *, title: str | None = None, title_id: str = "") -> str:
    """A standalone SVG document of the graph. With a `title` (a page that draws it inline),
    it is an image named by that title for screen readers (`role="img"`, its `<title>` with
    the id `title_id`); the page lists the same nodes as text beside it."""
    involved = [n for n in radius.nodes if n.kind == "system" and n.involved]
    components = [n for n in radius.nodes if n.kind != "system"]
    exposed = [n for n in radius.nodes if n.kind == "system" and not n.involved]
    columns = (involved, components, exposed)
    rows = max(1, *(len(c) for c in columns))
    height = 60 + rows * ROW
    place: dict[str, tuple[int, int]] = {}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12"'
        + (f' role="img" aria-labelledby="{escape(title_id)}">' if title else ">"),
        *([f'<title id="{escape(title_id)}">{escape(title)}</title>'] if title else []),
        '<text x="20" y="20" font-weight="bold">Involved systems</text>',
        '<text x="270" y="20" font-weight="bold">Shared components</text>',
        '<text x="540" y="20" font-weight="bold">Also exposed</text>',
    ]
    for x, column in zip(COLUMNS, columns, strict=True):
        for index, node in enumerate(column):
            place[node.id] = (x, 40 + index * ROW)
    for edge in radius.edges:
        if edge.source in place and edge.target in place:
            (x1, y1), (x2, y2) = place[edge.source], place[edge.target]
            left, right = (x1, x2) if x1 < x2 else (x2, x1)
            ya, yb = (y1, y2) if x1 < x2 else (y2, y1)
            parts.append(
                f'<line x1="{left + BOX}" y1="{ya + 10}" x2="{right}" y2="{yb + 10}" '
                'stroke="#999" stroke-width="1"/>'
            )
    colours = {"system": "#dbeafe", "exposed": "#fee2e2"}
    for x, column in zip(COLUMNS, columns, strict=True):
        for node in column:
            _, y = place[node.id]
            fill = (
                colours["exposed"]
                if node.kind == "system" and not node.involved
                else (colours["system"] if node.kind == "system" else "#f3f4f6")
            )
            text = node.label if node.kind == "system" else f"{node.kind}: {node.label}"
            parts.append(
                f'<rect x="{x}" y="{y}" width="{BOX}" height="20" rx="4" fill="{fill}" '
                'stroke="#6b7280"/>'
            )
            parts.append(f'<text x="{x + 6}" y="{y + 14}">{_label(text)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
