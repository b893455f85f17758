"""The report's charts as PNG images, each with an alt text that states its figures.

Drawn with matplotlib's Agg renderer (`Figure` and `FigureCanvasAgg`, never `pyplot`): it needs
no display server, keeps no global figure state between reports, and ships its own font
(DejaVu Sans), so a container renders the same image as a laptop. PNG, because email clients
do not reliably show SVG. matplotlib costs a few tenths of a second to import, so it is imported
only here, inside the functions that draw: the `dialer` command and the daemon never load it
(`docs/ARCHITECTURE.md`, "The report email", has the measurements).

Every chart is drawn from the `Summary` alone (the hours' figures come from the export's rows;
occupancy, which cannot, is the summary's figure from the database), and its alt text is written
from the same numbers, so a reader without images reads exactly what the bars show.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass

from campaigns.ingestion.bucket import Bucket
from campaigns.reporting.hourly import Hour
from campaigns.reporting.reports import Report, Summary

WIDTH_IN, DPI = 6.4, 200  # 640 CSS pixels wide in the email, drawn twice as dense for sharp screens
TOP_STATES = 15  # the by-state chart's bars; the rest are one "other" bar
LABEL_CHARS = 24
COLOURS = {"dials": "#9db7d5", "answered": "#2f6db5", "abandoned": "#d1495b", "occupancy": "#3b8a5a"}
# The same colour for an outcome in every report; `abandoned` is the red of the calls chart.
OUTCOME_COLOURS = {"completed": "#2f6db5", "no_answer": "#9db7d5", "machine": "#f2a541", "busy": "#7d5ba6",
                   "abandoned": "#d1495b", "failed": "#6c757d", "invalid_number": "#8c564b", "placed_late": "#3b8a5a"}
OTHER_COLOURS = ["#c9ada7", "#17becf", "#bcbd22", "#e377c2"]


@dataclass(frozen=True)
class Chart:
    name: str  # a file name's stem: `by-hour`, `occupancy`, …
    title: str
    alt: str  # the figures the chart shows, in words
    png: bytes


def hour_label(hour: Hour, summary: Summary) -> str:
    """`14:00`, or `Sun 19:00` for an hour not on the dialing day's date (Guam's evening before,
    Hawaii's after midnight on the report clock)."""
    start = hour.start
    return f"{start:%H:%M}" if start.date() == summary.day else f"{start:%a %H:%M}"


def plain(label: str) -> str:
    """A name as matplotlib shows it literally: shortened, its `$` not taken for mathematics."""
    text = label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS - 1] + "…"
    return text.replace("$", r"\$")


def _figure(height_in: float, dpi: int = DPI):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_IN, height_in), dpi=dpi, layout="constrained")
    return figure, figure.add_subplot()


def _style(axes, ylabel: str) -> None:
    axes.set_ylabel(ylabel, fontsize=9)
    axes.tick_params(labelsize=8)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.grid(axis="y", color="#e5e5e5", linewidth=0.6)
    axes.set_axisbelow(True)


def _hour_ticks(axes, summary: Summary) -> None:
    labels = [hour_label(h, summary) for h in summary.hours]
    step = max(1, -(-len(labels) // 16))  # at most 16 labels, so they never overlap
    axes.set_xticks(range(0, len(labels), step), [labels[i] for i in range(0, len(labels), step)],
                    rotation=45, ha="right")
    axes.set_xlim(-0.6, len(labels) - 0.4)


def _legend(figure, columns: int) -> None:
    """The legend above the plot, never over a bar."""
    figure.legend(loc="outside upper left", fontsize=8, frameon=False, ncols=columns)


def _png(figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def calls_by_hour(summary: Summary, dpi: int = DPI) -> Chart:
    """Dials, answered and abandoned per hour: grouped bars."""
    figure, axes = _figure(2.6, dpi)
    hours = summary.hours
    xs = range(len(hours))
    for offset, key in ((-0.27, "dials"), (0.0, "answered"), (0.27, "abandoned")):
        axes.bar([x + offset for x in xs], [getattr(h, key) for h in hours], width=0.27,
                 color=COLOURS[key], label=key)
    _style(axes, "calls")
    _hour_ticks(axes, summary)
    axes.yaxis.get_major_locator().set_params(integer=True)
    _legend(figure, 3)
    alt = (f"Calls by hour ({summary.timezone}): "
           + "; ".join(f"{hour_label(h, summary)} {h.dials} dials, {h.answered} answered, {h.abandoned} abandoned"
                       for h in hours) + ".")
    return Chart("by-hour", "Dials, answered and abandoned by hour", alt, _png(figure))


def occupancy_by_hour(summary: Summary) -> Chart:
    """The agents' share of each hour on calls (or agent minutes on calls, with no session count)."""
    figure, axes = _figure(2.0)
    hours, sessions = summary.hours, summary.agent_sessions
    if sessions:
        values = [100 * (h.occupancy(sessions) or 0.0) for h in hours]
        _style(axes, f"% of {sessions} sessions")
        axes.set_ylim(0, max(100.0, *values))
        words = "; ".join(f"{hour_label(h, summary)} {v:.0f}% ({h.on_call_s / 60:.0f} agent minutes)"
                          for h, v in zip(hours, values, strict=True))
        alt = f"Agent occupancy by hour ({summary.timezone}, {sessions} agent sessions): {words}."
        title = "Agent occupancy by hour"
    else:
        values = [h.on_call_s / 60 for h in hours]
        _style(axes, "agent minutes on calls")
        words = "; ".join(f"{hour_label(h, summary)} {v:.0f}" for h, v in zip(hours, values, strict=True))
        alt = f"Agent minutes on calls by hour ({summary.timezone}): {words}."
        title = "Agent minutes on calls by hour"
    axes.bar(range(len(hours)), values, width=0.7, color=COLOURS["occupancy"])
    _hour_ticks(axes, summary)
    return Chart("occupancy", title, alt, _png(figure))


def outcomes_by_hour(summary: Summary) -> Chart:
    """Each hour's dials by outcome: stacked bars, the commonest outcome at the bottom."""
    figure, axes = _figure(2.6)
    hours = summary.hours
    totals: Counter = Counter()
    for h in hours:
        totals.update(h.by_outcome)
    outcomes = [o for o, _ in totals.most_common()]
    bottoms = [0] * len(hours)
    for i, outcome in enumerate(outcomes):
        counts = [h.by_outcome.get(outcome, 0) for h in hours]
        axes.bar(range(len(hours)), counts, width=0.7, bottom=bottoms, label=plain(outcome),
                 color=OUTCOME_COLOURS.get(outcome, OTHER_COLOURS[i % len(OTHER_COLOURS)]))
        bottoms = [b + c for b, c in zip(bottoms, counts, strict=True)]
    _style(axes, "dials")
    _hour_ticks(axes, summary)
    axes.yaxis.get_major_locator().set_params(integer=True)
    _legend(figure, min(6, max(1, len(outcomes))))
    words = "; ".join(f"{hour_label(h, summary)} " + (", ".join(f"{o} {h.by_outcome[o]}" for o in outcomes
                                                                 if h.by_outcome.get(o)) or "none")
                      for h in hours)
    alt = f"Outcomes of the dials by hour ({summary.timezone}): {words}."
    return Chart("outcomes", "Outcomes by hour", alt, _png(figure))


def by_state(summary: Summary) -> Chart:
    """Dials and answered in the most dialed states (`TOP_STATES`): horizontal bars, the most first.
    The email's table lists every state."""
    ranked = sorted(summary.by_state.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ranked[:TOP_STATES]
    names = [state for state, _ in shown]
    dials = [n for _, n in shown]
    answered = [summary.answered_by_state.get(state, 0) for state in names]
    figure, axes = _figure(0.7 + 0.26 * len(names))
    ys = list(range(len(names)))[::-1]
    axes.barh([y + 0.18 for y in ys], dials, height=0.36, color=COLOURS["dials"], label="dials")
    axes.barh([y - 0.18 for y in ys], answered, height=0.36, color=COLOURS["answered"], label="answered")
    axes.set_yticks(ys, [plain(name) for name in names])
    axes.tick_params(labelsize=8)
    axes.xaxis.get_major_locator().set_params(integer=True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.grid(axis="x", color="#e5e5e5", linewidth=0.6)
    axes.set_axisbelow(True)
    _legend(figure, 2)
    words = "; ".join(f"{name} {d} dials, {a} answered" for name, d, a in zip(names, dials, answered, strict=True))
    rest = len(ranked) - len(shown)
    title = "Dials and answered by state" + (f", the {len(shown)} most dialed" if rest else "")
    more = f" ({rest} more states in the table)" if rest else ""
    return Chart("by-state", title, f"{title}: {words}.{more}", _png(figure))


def report_charts(summary: Summary) -> list[Chart]:
    """The report's charts, in the email's order; none for a day without dials."""
    if not summary.hours:
        return []
    return [calls_by_hour(summary), occupancy_by_hour(summary), outcomes_by_hour(summary), by_state(summary)]


def publish_by_hour(report: Report, bucket: Bucket) -> tuple[str, Chart] | None:
    """Write the calls-by-hour chart beside the export (`…/<slug>-<day>-by-hour.png`) at screen
    density, for the Dagster UI; returns its bucket URL and the chart, or None for a day without dials."""
    if not report.summary.hours:
        return None
    chart = calls_by_hour(report.summary, dpi=100)
    key = report.beside("by-hour.png")
    bucket.write_bytes(key, chart.png)
    return bucket.url_of(key), chart
