"""A self-contained HTML page around Bokeh plots: BokehJS inline, no network to open it."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["page", "table"]

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.4em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.muted { color: #777; }
"""


def _cell(value: Any) -> str:
    if value is None:
        return '<td class="muted">-</td>'
    if isinstance(value, bool):
        return f"<td>{'yes' if value else 'no'}</td>"
    if isinstance(value, int | float):
        text = f"{value:.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
        return f'<td class="num">{html.escape(text)}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], table_id: str = "") -> str:
    """An HTML table; values escaped, numbers right-aligned."""
    ident = f' id="{html.escape(table_id)}"' if table_id else ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, sections: Sequence[tuple[str, str]], plots: Any = None) -> str:
    """The whole page: *sections* are (heading, html) pairs; *plots* a Bokeh layout or None.

    The plots go after the first section; BokehJS is embedded, so the file
    opens with no network.
    """
    from bokeh.embed import components
    from bokeh.resources import Resources

    # BokehJS core only: the pages use no widgets, tables or WebGL.
    inline = Resources(mode="inline", components=["bokeh"])

    script, div = components(plots) if plots is not None else ("", "")
    parts = [f"<h1>{html.escape(title)}</h1>"]
    for i, (heading, body) in enumerate(sections):
        parts.append(f"<h2>{html.escape(heading)}</h2>{body}")
        if i == 0 and div:
            parts.append(f'<div id="plots">{div}</div>')
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style>"
        f"{inline.render() if plots is not None else ''}{script}</head>"
        f"<body>{''.join(parts)}</body></html>\n"
    )
