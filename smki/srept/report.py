"""The Test Completion Report of a SREPT run, as HTML and PDF (reportlab, as :mod:`smki.reports.render` draws
its reports): who rehearsed, against which catalogue, and per scenario its state and the interactions that
count, with the checks the sandbox made of the CRLs and ARLs in the pack."""

from __future__ import annotations

import datetime as dt
import html
import io
from dataclasses import dataclass

from jinja2 import Environment, FileSystemLoader, select_autoescape
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from smki.srept import TEMPLATES
from smki.srept.runs import Progress

HEADINGS = ("Scenario", "Title", "Kind", "Confidence", "State", "Interactions")
STATE_COLOURS = {"passed": colors.HexColor("#cce2d8"), "failed": colors.HexColor("#f6d7d2"),
                 "not_run": colors.HexColor("#f3f2f1")}


@dataclass(frozen=True)
class ListCheck:
    """A CRL or ARL in the pack and whether its signature verified against its issuer's certificate."""

    path: str
    issuer: str
    number: int | None
    entries: int
    signature_valid: bool


@dataclass(frozen=True)
class CompletionReport:
    progress: Progress
    made_at: dt.datetime
    interaction_times: dict[int, dt.datetime]
    list_checks: tuple[ListCheck, ...]

    @property
    def title(self) -> str:
        return f"SREPT Test Completion Report: {self.progress.party}, run {self.progress.run.id}"

    @property
    def verdict(self) -> str:
        progress = self.progress
        if progress.complete:
            return f"Every one of the {len(progress.scenarios)} scenarios that apply to the Party passed."
        return (f"{progress.count('passed')} of {len(progress.scenarios)} scenarios passed, {progress.count('failed')} "
                f"failed and {progress.count('not_run')} were not run.")

    def interactions(self, ids: tuple[int, ...]) -> str:
        return ", ".join(f"#{i} {self.interaction_times[i]:%Y-%m-%d %H:%M:%S}" for i in ids if i in
                         self.interaction_times)


_environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


def to_html(report: CompletionReport) -> bytes:
    return _environment.get_template("srept/report.html").render(report=report).encode()


def _cell(text: str, style: object) -> Paragraph:
    return Paragraph(html.escape(text), style)  # type: ignore[arg-type]


def to_pdf(report: CompletionReport) -> bytes:
    out = io.BytesIO()
    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=7, leading=8.5)
    run = report.progress.run
    document = SimpleDocTemplate(out, pagesize=A4, title=report.title, author="DCC (SMKI sandbox)",
                                 leftMargin=12 * mm, rightMargin=12 * mm, topMargin=12 * mm, bottomMargin=12 * mm)
    rows = [[_cell(h, small) for h in HEADINGS]]
    shading = []
    for n, s in enumerate(report.progress.scenarios, start=1):
        rows.append([_cell(s.id, small), _cell(s.title, small), _cell(s.kind, small), _cell(s.confidence, small),
                     _cell(s.state.replace("_", " "), small),
                     _cell(report.interactions(s.passing or s.failing), small)])
        shading.append(("BACKGROUND", (4, n), (4, n), STATE_COLOURS[s.state]))
    table = Table(rows, repeatRows=1, colWidths=[16 * mm, 70 * mm, 16 * mm, 16 * mm, 16 * mm, 52 * mm])
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                               ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef6")), *shading]))
    facts = [f"Party: {report.progress.party} (RA organisation {run.organisation_id})",
             f"Run {run.id}: opened {run.opened_at:%Y-%m-%d %H:%M:%S} UTC by {run.opened_by}; status {run.status}",
             f"Scenario catalogue SHA-256: {run.catalogue_sha256}",
             f"Report made {report.made_at:%Y-%m-%d %H:%M:%S} UTC by the SMKI sandbox"]
    checks = [Paragraph(html.escape(f"{c.path}: {c.issuer}, number {c.number}, {c.entries} entries, signature "
                                    f"{'valid' if c.signature_valid else 'NOT valid'}"), styles["BodyText"])
              for c in report.list_checks] or [Paragraph("No CRL or ARL in this run.", styles["BodyText"])]
    document.build([Paragraph(html.escape(report.title), styles["Title"]),
                    *[Paragraph(html.escape(f), styles["BodyText"]) for f in facts], Spacer(1, 3 * mm),
                    Paragraph(html.escape(report.verdict), styles["Heading2"]), table,
                    Paragraph("Revocation lists checked", styles["Heading2"]), *checks])
    return out.getvalue()
