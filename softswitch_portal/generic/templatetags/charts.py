"""``{% svg_chart points kind="line" title="ASR" unit="%" %}``: an inline SVG chart (see generic.charts)."""

from django import template

from ..charts import svg_chart as render_chart

register = template.Library()


@register.simple_tag
def svg_chart(points, kind="bar", title="", unit="", color="accent"):
    return render_chart(points, kind=kind, title=title, unit=unit, color=color)
