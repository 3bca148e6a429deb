"""The Repository Demand Exceptions report as CSV (every line's figures) and HTML (the users, the
exceptions and every line), in the manner of the CSR Forecast Variance Report's renderings."""

from __future__ import annotations

import csv
import html
import io

from smki.reports.demand import INTERFACE_NAMES, DemandLine, DemandReport

MEDIA_TYPES = {"csv": "text/csv", "html": "text/html"}
HEADINGS = ("Repository user", "Day", "Time band", "Interface", "Requests", "Forecast", "Percent of forecast",
            "Exception")


def _row(report: DemandReport, line: DemandLine) -> list[str]:
    return [line.user, line.day.isoformat(), line.band, INTERFACE_NAMES[line.interface], str(line.requests),
            "" if line.forecast is None else str(line.forecast), "" if line.percent is None else f"{line.percent}%",
            report.reason(line)]


def _title(report: DemandReport) -> str:
    return f"Repository Demand Exceptions Report, {report.period}"


def to_csv(report: DemandReport) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADINGS)
    writer.writerows(_row(report, line) for line in report.lines)
    for operation, requests in sorted(report.unclassified.items()):
        writer.writerow(["(no interface)", "", "", operation, str(requests), "", "", "operation of no interface"])
    return out.getvalue().encode()


def _table(headings: tuple[str, ...] | list[str], rows: list[list[str]], *, marked: list[bool] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headings)
    body = "".join(
        "<tr{}>{}</tr>".format(' class="exception"' if marked and marked[i] else "",
                               "".join(f"<td>{html.escape(cell)}</td>" for cell in row))
        for i, row in enumerate(rows))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_html(report: DemandReport) -> bytes:
    title = html.escape(_title(report))
    exceptions = report.exceptions
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>", f"<title>{title}</title>",
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #999;"
        "padding:2px 6px;text-align:right}td:first-child,th:first-child{text-align:left}"
        "tr.exception{background:#fde2e1}</style></head><body>",
        f"<h1>{title}</h1>",
        f"<p>{report.first_day} to {report.last_day}; time bands {html.escape(', '.join(report.bands))}; an "
        f"exception is a band of a day at or above {report.threshold:g}% of the user's forecast, or requests with "
        f"no forecast. Produced {report.produced_at:%Y-%m-%d %H:%M} UTC.</p>",
        "<h2>Repository users</h2>",
        _table(["Repository user", "Requests", "Exceptions"],
               [[user, str(requests), str(count)] for user, requests, count in report.users()]),
        f"<h2>Exceptions ({len(exceptions)})</h2>",
        _table(HEADINGS, [_row(report, line) for line in exceptions]) if exceptions else "<p>None.</p>",
    ]
    if report.unclassified:
        parts += ["<h2>Requests of operations no interface lists</h2>",
                  _table(["Operation", "Requests"], [[op, str(n)] for op, n in sorted(report.unclassified.items())])]
    parts += ["<h2>Every user, day and band</h2>",
              _table(HEADINGS, [_row(report, line) for line in report.lines],
                     marked=[bool(line.exception) for line in report.lines]),
              "</body></html>"]
    return "".join(parts).encode()


def render(report: DemandReport, fmt: str) -> bytes:
    return {"csv": to_csv, "html": to_html}[fmt](report)
