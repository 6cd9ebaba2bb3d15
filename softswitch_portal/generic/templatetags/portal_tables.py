"""The body rows of the list tables, built in Python rather than by the template's cell loop.

The loop in generic/table.html resolved ``column.attrs.td.as_html`` for every
cell, and django-tables2 recomputes a column's attributes on each access: on
the CDR list (50 rows of 10 columns) that was a third of the table's rendering
time. Here a column's cell attributes are computed once per table, unless they
depend on the row (a callable), and each cell is rendered as ``{{ cell }}``
would render it.
"""

from django import template
from django.template.base import render_value_in_context
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()


def _cell_attrs_vary_by_row(bound_column):
    # The same merge BoundColumn.attrs makes: the table's attrs, then the column's; "td", else "cell".
    merged = {**bound_column._table.attrs, **bound_column.column.attrs}
    cell = merged.get("td", merged.get("cell", {}))
    return any(callable(value) for value in cell.values())


@register.simple_tag(takes_context=True)
def table_row(context, row):
    """``<tr>`` and its cells for one django-tables2 BoundRow, the markup of the loop it replaces."""
    table = row.table
    static = table.__dict__.setdefault("_portal_td_attrs", {})
    cells = []
    for column, cell in row.items():
        attrs = static.get(column.name)
        if attrs is None:
            attrs = column.attrs["td"].as_html()
            if not _cell_attrs_vary_by_row(column):
                static[column.name] = attrs
        cells.append(format_html("<td {}>{}</td>", attrs, render_value_in_context(cell, context)))
    return format_html("<tr {}>{}</tr>", row.attrs.as_html(), mark_safe("".join(cells)))
