"""Small HTML builders for the report: escaped text, tables, sections, figures and numbers."""

from __future__ import annotations

import html
from collections.abc import Iterable


def esc(value: object) -> str:
    """value as escaped HTML text."""
    return html.escape(str(value), quote=True)


def num(value: object, digits: int = 4) -> str:
    """A figure with `digits` significant digits (8.0 -> 8, 1.23 -> 1.23); '—' for None or a non-number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—"
    return f"{value:.{digits}g}"


def table(headers: Iterable[str], rows: Iterable[Iterable[str]], css: str = "") -> str:
    """A table; headers are escaped here, cells must already be HTML."""
    head = "".join(f"<th>{esc(header)}</th>" for header in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    css_class = f' class="{esc(css)}"' if css else ""
    return f"<table{css_class}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def section(anchor: str, title: str, body: str) -> str:
    """A titled section of the report."""
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'


def figure(data_uri: str | None, alt: str) -> str:
    """An embedded PNG with its caption, or a note that there was nothing to plot."""
    if data_uri is None:
        return f'<p class="note">No figure: {esc(alt)} has no data in this run.</p>'
    return f'<figure><img src="{data_uri}" alt="{esc(alt)}"><figcaption>{esc(alt)}</figcaption></figure>'


def para(text: str, css: str = "") -> str:
    """A paragraph of escaped text."""
    css_class = f' class="{esc(css)}"' if css else ""
    return f"<p{css_class}>{esc(text)}</p>"
