"""The daily report as an email a manager opens: HTML with charts, a plain-text alternative, the export.

The message is

    multipart/mixed
    ├── multipart/alternative
    │   ├── text/plain          `summary_text`, as it always was
    │   └── multipart/related
    │       ├── text/html       headline figures, charts, tables
    │       └── image/png …     the charts, referenced from the HTML as `cid:`
    └── the export             exactly the bytes the summary was computed from

Inline PNG rather than SVG or remote images: email clients do not reliably show SVG and
block remote images by default. The HTML is tables and inline styles, 640 pixels wide, as
email clients need. Every name in it (campaign, states, outcomes, dispositions, lists) is
data and is escaped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from email.message import EmailMessage
from html import escape

from campaigns.reporting.reports import (
    ABANDON_LIMIT,
    Report,
    Summary,
    registry_text,
    summary_text,
)

FONT = "font-family:Helvetica,Arial,sans-serif;"
MUTED = "color:#5f6b7a;"
RED = "#b3261e"


def subject(s: Summary) -> str:
    flag = " — abandon rate above 3%" if s.period_flagged else ""
    return f"[dialer] {s.campaign} — {s.day.isoformat()}: {s.dials} dials, {s.contacted} contacted{flag}"


def content_id(name: str, s: Summary) -> str:
    """The chart's Content-ID, without its angle brackets (unique within the message)."""
    return f"{name}.{s.day.isoformat()}@report.dialer"


def compose(report: Report, recipients: list[str]) -> EmailMessage:
    """The report's email: HTML with inline charts, the plain-text summary, the export attached."""
    from campaigns.reporting import (
        charts,  # matplotlib: loaded only when a report is composed
    )

    s = report.summary
    drawn = charts.report_charts(s)
    message = EmailMessage()
    message["Subject"] = subject(s)
    message["To"] = ", ".join(recipients)
    message.set_content(summary_text(s))
    message.add_alternative(html(s, drawn, report.filename), subtype="html")
    html_part = message.get_body(("html",))  # the HTML alternative just added
    assert isinstance(html_part, EmailMessage)
    for chart in drawn:
        html_part.add_related(chart.png, maintype="image", subtype="png", cid=f"<{content_id(chart.name, s)}>",
                              disposition="inline")
    name = report.filename
    subtype = {"zip": ("application", "zip"), "gz": ("application", "gzip")}.get(name.rsplit(".", 1)[-1],
                                                                                 ("text", "csv"))
    message.add_attachment(report.content, maintype=subtype[0], subtype=subtype[1], filename=name)
    return message


def _tile(key: str, label: str, value: str, note: str = "", colour: str = "#1d2733") -> str:
    return (f'<td id="figure-{key}" style="{FONT}padding:10px 8px;border:1px solid #e3e7ec;border-radius:6px;'
            f'text-align:center;width:16%;vertical-align:top">'
            f'<div style="font-size:10px;{MUTED}text-transform:uppercase">{escape(label)}</div>'
            f'<div class="value" style="font-size:24px;font-weight:bold;color:{colour};margin-top:4px">{escape(value)}</div>'
            f'<div class="note" style="font-size:11px;{MUTED}margin-top:2px">{escape(note)}</div></td>')


def headline(s: Summary) -> str:
    """The day's figures as tiles: dials, answered, contacted, qualified, abandoned, 30-day rate."""
    flagged = s.period_flagged
    period_note = f"above the {ABANDON_LIMIT:.0%} limit" if flagged else f"limit {ABANDON_LIMIT:.0%}"
    tiles = [
        _tile("dials", "Dials", f"{s.dials:,}"),
        _tile("answered", "Answered", f"{s.answered:,}"),
        _tile("contacted", "Contacted", f"{s.contacted:,}"),
        _tile("qualified", "Qualified", f"{s.qualified:,}"),
        _tile("abandoned", "Abandoned", f"{s.abandoned:,}", f"rate {s.abandon_rate:.1%}"),
        _tile("abandon-rate-30-days", "30-day abandon rate", f"{s.period_abandon_rate:.2%}", period_note,
              RED if flagged else "#1d2733"),
    ]
    return ('<table id="headline" role="presentation" width="100%" cellspacing="4" cellpadding="0" '
            f'style="border-collapse:separate"><tr>{"".join(tiles)}</tr></table>')


def _secondary(s: Summary) -> str:
    items = [("callbacks", "Callbacks scheduled", s.callbacks), ("dnc-added", "DNC added", s.dnc_added),
             ("not-placed", "Not placed", s.not_placed), ("still-to-dial", "Still to dial", s.remaining_dialable)]
    cells = "".join(f'<td id="figure-{key}" style="{FONT}font-size:13px;padding:6px 8px">{escape(label)} '
                    f'<b class="value">{value:,}</b></td>' for key, label, value in items)
    return f'<table role="presentation" width="100%" cellspacing="0" cellpadding="0"><tr>{cells}</tr></table>'


def _section(title: str, body: str, note: str = "") -> str:
    note_html = f'<p style="{FONT}font-size:12px;{MUTED}margin:4px 0 0">{note}</p>' if note else ""
    return (f'<tr><td style="padding:18px 16px 0"><h2 style="{FONT}font-size:16px;margin:0 0 8px;color:#1d2733">'
            f'{escape(title)}</h2>{body}{note_html}</td></tr>')


def _table(table_id: str, header: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    head = "".join(f'<th style="{FONT}font-size:12px;text-align:{"left" if i == 0 else "right"};padding:4px 8px;'
                   f'border-bottom:1px solid #cfd6de;{MUTED}">{escape(h)}</th>' for i, h in enumerate(header))
    body = "".join(
        '<tr class="row">' + "".join(f'<td style="{FONT}font-size:13px;text-align:{"left" if i == 0 else "right"};padding:3px 8px;'
                         f'border-bottom:1px solid #eef1f4">{escape(f"{v:,}" if isinstance(v, int) else str(v))}</td>'
                         for i, v in enumerate(row)) + "</tr>"
        for row in rows)
    return (f'<table id="{table_id}" width="100%" cellspacing="0" cellpadding="0" style="border-collapse:collapse">'
            f"<tr>{head}</tr>{body}</table>")


def _columns(table_id: str, header: tuple[str, ...], rows: list[tuple], groups: int = 3) -> str:
    """A long table folded into `groups` side-by-side tables (a country's states fit one screen);
    few rows stay in one."""
    if len(rows) <= 12:
        return _table(table_id, header, rows)
    per = -(-len(rows) // groups)
    cells = "".join(f'<td style="vertical-align:top;width:{100 // groups}%;padding:0 6px 0 0">'
                    f'{_table(f"{table_id}-{i + 1}", header, rows[i * per:(i + 1) * per])}</td>'
                    for i in range(groups))
    return (f'<table id="{table_id}" role="presentation" width="100%" cellspacing="0" cellpadding="0">'
            f"<tr>{cells}</tr></table>")


def _counts(table_id: str, label: str, counts: Counter) -> str:
    ranked = sorted(((k, v) for k, v in counts.items() if v), key=lambda kv: (-kv[1], kv[0]))
    return _table(table_id, (label, "Calls"), ranked)


def html(s: Summary, drawn: list, attachment: str) -> str:
    """The email's HTML: `drawn` are the charts (`charts.Chart`), shown through their Content-IDs."""
    zone = escape(s.timezone)
    sections = [_section("The day", headline(s) + _secondary(s),
                         "Abandon rate: calls abandoned ÷ calls answered by a person (connected or abandoned); "
                         f"the 30-day rate is the compliance figure, to be kept at or below {ABANDON_LIMIT:.0%}.")]
    notes = {
        "by-hour": f"Hours on the {zone} clock (the campaign's report time zone), by when each call was placed; "
                   "a call belongs to the dialing day of its prospect's local date, so the first and last hours "
                   "may fall on the day before or after.",
        "occupancy": ("Time agents spent on the campaign's calls in each hour (any dialing day's), read from the "
                      f"calls in the database, not the export, ÷ the {s.agent_sessions} agent sessions the voice "
                      "platform last reported: the database keeps no history of the session count."
                      if s.agent_sessions else
                      "Read from the calls in the database, not the export. The voice platform has reported no "
                      "agent session count for this campaign, so occupancy cannot be given."),
        "outcomes": "The outcome of each dial, by the hour it was placed.",
        "by-state": "The prospect's state as uploaded (else the area code's).",
    }
    for chart in drawn:
        image = (f'<img src="cid:{escape(content_id(chart.name, s))}" width="608" alt="{escape(chart.alt)}" '
                 f'style="display:block;width:100%;max-width:608px;height:auto;border:0">')
        sections.append(_section(chart.title, image, notes.get(chart.name, "")))
    if not drawn:
        sections.append(_section("Calls by hour", f'<p style="{FONT}font-size:13px">No calls were placed on this '
                                                  "dialing day.</p>"))
    state_rows = sorted(((k, v, s.answered_by_state.get(k, 0)) for k, v in s.by_state.items()),
                        key=lambda r: (-r[1], r[0]))
    tables = [
        ("By state", _columns("by-state", ("State", "Dials", "Answered"), state_rows)),
        ("By outcome", _counts("by-outcome", "Outcome", s.by_outcome)),
        ("By disposition", _counts("by-disposition", "Disposition", s.by_disposition)),
        ("By list", _counts("by-list", "List", s.by_list)),
    ]
    sections += [_section(title, table) for title, table in tables if "<td" in table]
    footer = [f"The calls export is attached: <b>{escape(attachment)}</b>; the day's figures above are computed "
              "from it, except agent occupancy, the prospects still to dial and the 30-day abandon rate, which "
              "come from the database."]
    footer += [escape(line) for line in registry_text(s)]
    sections.append(f'<tr><td style="padding:18px 16px 20px;{FONT}font-size:12px;{MUTED}">'
                    + "<br>".join(footer) + "</td></tr>")
    title = f"{s.campaign} — dialing day {s.day:%a %Y-%m-%d}"
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title></head>"
        '<body style="margin:0;padding:0;background:#f3f5f8">'
        '<table role="presentation" width="100%" cellspacing="0" cellpadding="0" style="background:#f3f5f8">'
        '<tr><td align="center" style="padding:16px 8px">'
        '<table role="presentation" width="640" cellspacing="0" cellpadding="0" '
        'style="width:100%;max-width:640px;background:#ffffff;border:1px solid #e3e7ec">'
        f'<tr><td style="padding:16px 16px 0;{FONT}"><div style="font-size:12px;{MUTED}">Daily campaign report</div>'
        f'<h1 id="title" style="font-size:20px;margin:2px 0 0;color:#1d2733">{escape(title)}</h1></td></tr>'
        + "".join(sections)
        + "</table></td></tr></table></body></html>"
    )
