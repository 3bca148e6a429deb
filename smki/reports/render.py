"""The report as CSV (the figures), HTML and PDF (the figures, the exceptions and a chart of actual
against forecast). One chart, drawn once with reportlab's graphics: embedded as SVG in the HTML and as
vector graphics in the PDF, so both show the same picture."""

from __future__ import annotations

import csv
import html
import io
from decimal import Decimal

from reportlab.graphics import renderSVG
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from smki.reports.variance import SubscriberLine, VarianceReport, Volumes

MEDIA_TYPES = {"csv": "text/csv", "html": "text/html", "pdf": "application/pdf"}
CHARTED = 25        # a chart of 100 Subscribers' bars is unreadable: the largest by volume, and the rest summed
ACTUAL, FORECAST = colors.HexColor("#1f5fa8"), colors.HexColor("#b5c7dd")

HEADINGS = ("Subscriber", "Organisation id", "Device CSRs forecast (single)", "Device CSRs sent (single)",
            "Device CSRs forecast (batched)", "Device CSRs sent (batched)", "Device CSRs forecast",
            "Device CSRs sent", "Percent of forecast", "Organisation CSRs forecast", "Organisation CSRs sent",
            "Exception")


def _title(report: VarianceReport) -> str:
    edition = "published edition" if report.edition == "published" else "full edition: Panel and SMKI PMA only"
    return f"CSR Forecast Variance Report, {report.month} ({edition})"


def _figure(value: int | None) -> str:
    return "" if value is None else str(value)


def _percent(value: Decimal | None) -> str:
    return "" if value is None else f"{value}%"


def _row(line: SubscriberLine, reasons: dict[str, str]) -> list[str]:
    forecast = line.forecast
    return [line.name, _figure(line.organisation_id),
            _figure(forecast.device_single if forecast else None), str(line.actual.device_single),
            _figure(forecast.device_batched if forecast else None), str(line.actual.device_batched),
            _figure(forecast.device if forecast else None), str(line.actual.device), _percent(line.percent),
            _figure(forecast.organisation if forecast else None), str(line.actual.organisation),
            reasons[line.exception] if line.exception else ""]


def _total_row(report: VarianceReport) -> list[str]:
    actual, forecast = report.total_actual, report.total_forecast
    return ["Total", "", str(forecast.device_single), str(actual.device_single), str(forecast.device_batched),
            str(actual.device_batched), str(forecast.device), str(actual.device), _percent(report.total_percent),
            str(forecast.organisation), str(actual.organisation), f"{len(report.exceptions)} exception(s)"]


def to_csv(report: VarianceReport) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADINGS)
    writer.writerows(_row(line, report.reasons) for line in report.lines)
    writer.writerow(_total_row(report))
    return out.getvalue().encode()


def chart(report: VarianceReport, width: float = 260 * mm, height: float = 90 * mm) -> Drawing:
    """Device CSRs sent against forecast, per Subscriber (the largest ``CHARTED``; the rest as one bar)."""
    ranked = sorted(report.lines, key=lambda line: -max(line.actual.device,
                                                        line.forecast.device if line.forecast else 0))
    shown, rest = ranked[:CHARTED], ranked[CHARTED:]
    labels = [line.name[:18] for line in shown]
    actual = [line.actual.device for line in shown]
    forecast = [line.forecast.device if line.forecast else 0 for line in shown]
    if rest:
        others = sum((line.actual for line in rest), Volumes())
        labels.append(f"{len(rest)} others")
        actual.append(others.device)
        forecast.append(sum(line.forecast.device for line in rest if line.forecast))
    drawing = Drawing(width, height)
    bars = VerticalBarChart()
    bars.x, bars.y, bars.width, bars.height = 45, 60, int(width - 60), int(height - 90)
    bars.data = [forecast or [0], actual or [0]]
    bars.categoryAxis.categoryNames = labels or ["no CSRs"]
    bars.categoryAxis.labels.angle, bars.categoryAxis.labels.boxAnchor = 45, "ne"
    bars.categoryAxis.labels.fontSize = 6
    bars.valueAxis.valueMin = 0
    bars.valueAxis.labels.fontSize = 7
    bars.bars[0].fillColor, bars.bars[1].fillColor = FORECAST, ACTUAL
    drawing.add(bars)
    legend = Legend()
    legend.x, legend.y, legend.fontSize = 50, int(height - 12), 8
    legend.alignment, legend.columnMaximum = "right", 1
    legend.colorNamePairs = [(FORECAST, "Device CSRs forecast"), (ACTUAL, "Device CSRs sent")]
    drawing.add(legend)
    drawing.add(String(width - 5, height - 12, f"{report.month}", textAnchor="end", fontSize=8))
    return drawing


def to_html(report: VarianceReport) -> bytes:
    svg = renderSVG.drawToString(chart(report))
    svg = svg[svg.index("<svg"):]  # drop the XML declaration and doctype: it sits inside an HTML page
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADINGS)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in _row(line, report.reasons))
                   + "</tr>" for line in report.lines)
    total = "".join(f"<th>{html.escape(cell)}</th>" for cell in _total_row(report))
    exceptions = "".join(f"<li>{html.escape(line.name)}: {html.escape(report.reasons[line.exception or ''])}"
                         f" ({line.actual.device} Device CSRs sent{_against(line)})</li>"
                         for line in report.exceptions) or "<li>None.</li>"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(_title(report))}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:0.85em}}
td,th{{border:1px solid #999;padding:0.2em 0.5em;text-align:right}}td:first-child,th:first-child{{text-align:left}}
</style></head><body>
<h1>{html.escape(_title(report))}</h1>
<p>{html.escape(_headline(report))}</p>
<figure>{svg}<figcaption>Device CSRs sent against forecast, by Subscriber.</figcaption></figure>
<h2>Forecast Exceptions</h2><ul>{exceptions}</ul>
<h2>Volumes against forecast</h2>
<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody><tfoot><tr>{total}</tr></tfoot></table>
</body></html>
"""
    return page.encode()


def _against(line: SubscriberLine) -> str:
    return f" against {line.forecast.device} forecast" if line.forecast else ", no forecast"


def _headline(report: VarianceReport) -> str:
    regime = "L8.9 forecasts" if report.regime == "l8_9" else "MP160 exceptional-demand notices"
    return (f"{report.total_actual.device:,} Device CSRs sent against {report.total_forecast.device:,} forecast "
            f"({_percent(report.total_percent) or 'no forecast'}); {report.total_actual.organisation:,} Organisation "
            f"CSRs. {len(report.lines)} Authorised Subscribers, {len(report.exceptions)} exception(s) under the "
            f"{regime} regime. Due by {report.due_date:%A %d %B %Y} (Working Day); produced "
            f"{report.produced_at:%Y-%m-%d %H:%M} UTC.")


def to_pdf(report: VarianceReport) -> bytes:
    out = io.BytesIO()
    styles = getSampleStyleSheet()
    document = SimpleDocTemplate(out, pagesize=landscape(A4), title=_title(report), author="DCC (SMKI sandbox)",
                                 leftMargin=12 * mm, rightMargin=12 * mm, topMargin=12 * mm, bottomMargin=12 * mm)
    small = styles["BodyText"].clone("small", fontSize=7, leading=8)
    table = Table([[Paragraph(h, small) for h in HEADINGS],
                   *[[Paragraph(html.escape(cell), small) for cell in _row(line, report.reasons)]
                     for line in report.lines],
                   [Paragraph(html.escape(cell), small) for cell in _total_row(report)]], repeatRows=1)
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                               ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef6")),
                               ("BACKGROUND", (0, -1), (-1, -1), colors.HexColor("#e8eef6"))]))
    exceptions = [Paragraph(html.escape(f"{line.name}: {report.reasons[line.exception or '']} "
                                        f"({line.actual.device} Device CSRs sent{_against(line)})"),
                            styles["BodyText"]) for line in report.exceptions]
    exceptions = exceptions or [Paragraph("None.", styles["BodyText"])]
    document.build([Paragraph(html.escape(_title(report)), styles["Title"]),
                    Paragraph(html.escape(_headline(report)), styles["BodyText"]), Spacer(1, 4 * mm),
                    chart(report), Paragraph("Forecast Exceptions", styles["Heading2"]), *exceptions,
                    Paragraph("Volumes against forecast", styles["Heading2"]), table])
    return out.getvalue()


def render(report: VarianceReport, fmt: str) -> bytes:
    return {"csv": to_csv, "html": to_html, "pdf": to_pdf}[fmt](report)
