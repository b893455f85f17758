"""`dialer explain` and `dialer hopper fill`: the dial-window rules and the hopper from a terminal.

Both call the same `campaigns/` code the Dagster `hopper` asset and the
daemon call; `--at` makes any answer reproducible.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from campaigns.core.lifecycle import FillOrigin
from campaigns.dialing import hopper
from campaigns.reporting.explain import explain_phone
from campaigns.setup import registry
from dialer_cli.common import (
    JsonFlag,
    config_of,
    database,
    literal,
    out,
    parse_at,
    print_json,
    user_errors,
)

commands = typer.Typer()
hopper_app = typer.Typer(help="Fill and inspect the hopper.", no_args_is_help=True)

AtOption = Annotated[
    str | None,
    typer.Option("--at", help="The instant to decide at, ISO-8601 (e.g. 2026-07-01T03:30Z); default now."),
]


@commands.command("explain")
@user_errors
def explain_cmd(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(help="SLUG or WORKSPACE/SLUG.")],
    phone: Annotated[str, typer.Option("--phone", help="The number, in any format an upload accepts.")],
    state: Annotated[str | None, typer.Option("--state", help="State or province (hypothetical prospect).")] = None,
    zip_code: Annotated[str | None, typer.Option("--zip", help="ZIP or postal code (hypothetical prospect).")] = None,
    at: AtOption = None,
    json_out: JsonFlag = False,
) -> None:
    """Say whether a prospect may be dialed at an instant, every reason it may not, and when it next may."""
    now = parse_at(at)
    with database(config_of(ctx)) as engine, engine.connect() as conn:
        ref = registry.resolve_campaign(conn, campaign)
        answer = explain_phone(conn, ref.id, ref.qualified_slug, phone, now, state=state, zip_code=zip_code)
    if json_out:
        print_json(answer.as_dict())
        return
    verdict = answer.verdict
    who = (f"prospect {answer.prospect_id} ({answer.status})" if answer.source == "loaded"
           else "a hypothetical new prospect")
    states = ", ".join(
        f"{label} {value}" for label, value in
        (("state", answer.place.address_state), ("area code", answer.place.area_code_state)) if value
    )
    out.print(Text.assemble(
        literal(answer.phone_e164, "bold"), literal(f" in {answer.campaign}, {who}"),
        literal(f" ({states})" if states else ""), f" at {now.isoformat()}:",
    ))
    if verdict.dialable:
        out.print(Text("dialable now", style="bold green"))
    else:
        out.print(Text("not dialable", style="bold red"))
        for reason in verdict.reasons:
            out.print(Text.assemble("  • ", (reason.code, "yellow"), ": ", literal(reason.message)))
    table = Table("zone", "local time", "open")
    for zone in verdict.zones:
        table.add_row(zone.zone, f"{zone.local:%a %Y-%m-%d %H:%M} {zone.local.tzname()}",
                      "yes" if zone.open else "no")
    out.print(table)
    if not verdict.dialable:
        nxt = verdict.next_dialable_at
        out.print(f"next dialable at {nxt.isoformat()}" if nxt
                  else "not dialable again without a change (see the reasons above)")


@hopper_app.command("fill")
@user_errors
def hopper_fill(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(help="SLUG or WORKSPACE/SLUG.")],
    at: AtOption = None,
    json_out: JsonFlag = False,
) -> None:
    """Top the campaign's hopper up now (whatever its fill interval) and print what was queued."""
    now = parse_at(at)
    with database(config_of(ctx)) as engine:
        with engine.connect() as conn:
            ref = registry.resolve_campaign(conn, campaign)
        result = hopper.fill_campaign(engine, ref.id, now, filled_by=FillOrigin.CLI)
        with engine.connect() as conn:
            queued = hopper.queued_prospects(conn, result.queued_ids)
    if json_out:
        print_json({"campaign": ref.qualified_slug, **result.as_dict(), "queued_prospects": queued})
        return
    out.print(Text.assemble(
        literal(ref.qualified_slug, "bold"), f" hopper at {now.isoformat()}: queued {result.queued} "
        f"({result.queued_callbacks} callbacks), level {result.level}, depth "
        f"{result.depth_before} → {result.depth_after}; returned {result.returned_expired} expired "
        f"and {result.returned_closed} outside their window or no longer due; marked "
        f"{result.marked_dnc} DNC (on a DNC list); skipped {result.skipped_cap} at a state's "
        f"24-hour cap; {result.open_groups} of "
        f"{result.open_groups + result.closed_groups} zone groups open ({result.duration_ms:.0f} ms).",
    ))
    if result.note:
        out.print(result.note)
    if queued:
        table = Table("prospect", "phone", "state", "priority", "attempts", "from", "zones")
        for row in queued[:20]:
            table.add_row(str(row["prospect_id"]), row["phone"], row["state"] or "-", str(row["priority"]),
                          str(row["attempts"]), row["from"], row["zones"])
        out.print(table)
        if len(queued) > 20:
            out.print(f"… and {len(queued) - 20} more (--json lists all).")

