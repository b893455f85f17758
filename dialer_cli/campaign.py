"""`dialer campaign …`: create campaigns from their files, inspect them and steer their state."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.table import Table
from rich.text import Text

from campaigns.core.errors import DialerError
from campaigns.core.lifecycle import CampaignState
from campaigns.reporting.explain import not_dialable_summary
from campaigns.reporting.status import PacingStatus, campaign_status
from campaigns.setup import registry
from campaigns.setup.settings import load_settings_file
from dialer_cli import watch as live
from dialer_cli.common import (
    JsonFlag,
    config_of,
    database,
    literal,
    now,
    out,
    parse_at,
    print_json,
    user_errors,
)

campaign_app = typer.Typer(help="Create, inspect and steer campaigns.", no_args_is_help=True)


@campaign_app.command("apply")
@user_errors
def campaign_apply(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Campaign YAML file.")],
    json_out: JsonFlag = False,
) -> None:
    """Create or update a campaign from a YAML file; applying the same file twice changes nothing."""
    settings, keys = load_settings_file(file)
    with database(config_of(ctx)) as engine, engine.begin() as conn:
        result = registry.apply_campaign(conn, settings, now(), keys_given=keys)
    if json_out:
        print_json(
            {
                "action": result.action,
                "workspace": result.workspace,
                "slug": result.slug,
                "changes": result.changes,
                "created_dnc_lists": result.created_dnc_lists,
                "created_workspace": result.created_workspace,
            }
        )
        return
    label = f"{result.workspace}/{result.slug}"
    if result.created_workspace:
        out.print(f"Created workspace {result.workspace}.")
    for name in result.created_dnc_lists:
        out.print(f"Created empty DNC list {result.workspace}/{name}.")
    if result.action == registry.ApplyAction.UNCHANGED:
        out.print(f"Campaign {label} unchanged.")
    elif result.action == registry.ApplyAction.CREATED:
        out.print(f"Campaign {label} created.")
    else:
        out.print(f"Campaign {label} updated:")
        for change in result.changes:
            out.print(f"  {change}", markup=False)


@campaign_app.command("list")
@user_errors
def campaign_list(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """List every campaign with its state and status."""
    moment = now()
    with database(config_of(ctx)) as engine, engine.connect() as conn:
        reports = [campaign_status(conn, c.id, moment) for c in registry.list_campaigns(conn)]
    if json_out:
        print_json([r.as_dict() for r in reports])
        return
    if not reports:
        out.print("No campaigns yet; create one with `dialer campaign apply FILE`.")
        return
    table = Table()
    for column in ("workspace", "slug", "state", "status"):
        table.add_column(column, no_wrap=True, min_width=len(column))
    table.add_column("name", ratio=1)
    table.add_column("prospects", justify="right", no_wrap=True, min_width=9)
    table.add_column("live", justify="right", no_wrap=True)
    for r in reports:
        table.add_row(
            r.workspace,
            r.slug,
            r.state,
            str(r.status),
            r.name,
            str(sum(r.prospects.values())),
            str(r.calls_in_flight),
        )
    out.print(table)


@campaign_app.command("show")
@user_errors
def campaign_show(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(help="SLUG or WORKSPACE/SLUG.")],
    json_out: JsonFlag = False,
) -> None:
    """Print a campaign's effective settings (defaults filled in) as YAML."""
    with database(config_of(ctx)) as engine, engine.connect() as conn:
        ref = registry.resolve_campaign(conn, campaign)
        settings = registry.load_settings(conn, ref.id)
    data = settings.model_dump(mode="json")
    if json_out:
        print_json(data)
    else:
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


@campaign_app.command("status")
@user_errors
def campaign_status_cmd(
    ctx: typer.Context,
    campaign: Annotated[
        str | None, typer.Argument(help="SLUG or WORKSPACE/SLUG; with --watch, omit it to follow every active campaign.")
    ] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="Decide dialability at this ISO-8601 instant; default now.")
    ] = None,
    watch: Annotated[bool, typer.Option(
        "--watch", help="Refresh every dialer interval until Ctrl-C: state, lease holder, sessions, calls in "
                        "flight and over the last 5 minutes, abandon rates, hopper, top reasons not dialable.")] = False,
    count: Annotated[int | None, typer.Option(
        "--count", min=1, help="With --watch: refresh this many times, then exit.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Show whether a campaign is Running, Stopped, Completed or Inactive, with prospect counts
    and the top reasons its prospects may not be dialed right now; --watch follows it live."""
    if watch:
        if at is not None:
            raise DialerError("--at and --watch do not go together: --watch follows the clock; drop one of them.")
        with database(config_of(ctx)) as engine:
            live.run(engine, campaign, json_out=json_out, count=count)
        return
    if count is not None:
        raise DialerError("--count goes with --watch (how many refreshes); add --watch or drop --count.")
    if campaign is None:
        raise DialerError("name a campaign (SLUG or WORKSPACE/SLUG), or add --watch to follow every active campaign.")
    moment = parse_at(at)
    with database(config_of(ctx)) as engine, engine.connect() as conn:
        ref = registry.resolve_campaign(conn, campaign)
        report = campaign_status(conn, ref.id, moment)
        dialability = not_dialable_summary(conn, ref.id, moment)
    if json_out:
        print_json({**report.as_dict(), "dialability": dialability})
        return
    out.print(Text.assemble(
        literal(f"{report.workspace}/{report.slug}", "bold"), " — ", literal(report.name),
        f"\nstate {report.state}, status ", (str(report.status), "bold"),
        f", {report.calls_in_flight} calls in flight, hopper {report.hopper_depth}, {report.uploads} uploads",
    ))
    if report.paced_by:
        out.print(f"paced by daemon {report.paced_by} (lease until {report.lease_expires_at:%Y-%m-%d %H:%M:%S} UTC "
                  "unless renewed)")
    else:
        out.print("no daemon holds its lease: nothing paces it until a `dialer daemon` runs")
    if report.pacing is not None:
        _print_pacing(report.pacing)
    table = Table("prospect state", "count")
    for state, count in report.prospects.items():
        table.add_row(state, str(count))
    table.add_row(Text("total", style="bold"), str(sum(report.prospects.values())))
    out.print(table)
    out.print(
        f"{dialability['dialable_now']} of {dialability['open_prospects']} ready, queued or callback "
        "prospects may be dialed now."
    )
    if dialability["top_reasons"]:
        reasons = Table("not dialable now because", "prospects", "for example")
        for reason in dialability["top_reasons"]:
            reasons.add_row(reason["code"], str(reason["prospects"]), literal(reason["message"]))
        out.print(reasons)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _print_pacing(p: PacingStatus) -> None:
    line = Text(f"pacing {p.mode} (target abandon rate {p.target_abandon_rate:.1%})")
    if p.estimated_at is None:
        line += ": no tick yet"
    else:
        line += (f" at {p.estimated_at:%H:%M:%S} UTC: answer rate {_percent(p.answer_rate)}, "
                 f"{'—' if p.expected_free_sessions is None else f'{p.expected_free_sessions:.1f}'} sessions "
                 "expected free")
        if p.margin is not None:
            line += f", margin {p.margin:.2f}σ"
        if p.guard:
            line.append(", ").append("30-day guard on: no overdial", style="bold")
        line += f"; last tick placed {p.last_calls} ({p.limited_by})"
        if p.sessions_total is not None:
            line += (f"; sessions {p.sessions_total}: {p.sessions_idle} idle, {p.sessions_wrap_up} in wrap-up")
    out.print(line)
    out.print(f"abandon rate: last hour {_percent(p.abandon_rate_hour)} of {p.answered_hour:,} answered, "
              f"30 days {_percent(p.abandon_rate_30d)} of {p.answered_30d:,} answered")


def _state_command(name: str, state: CampaignState, verb: str) -> None:
    @campaign_app.command(name, help=f"Set the campaign's state to {state}.")
    @user_errors
    def command(
        ctx: typer.Context,
        campaign: Annotated[str, typer.Argument(help="SLUG or WORKSPACE/SLUG.")],
    ) -> None:
        with database(config_of(ctx)) as engine, engine.begin() as conn:
            ref = registry.resolve_campaign(conn, campaign)
            changed = registry.set_state(conn, ref, state, now())
        if changed:
            out.print(f"Campaign {ref.qualified_slug} {verb} (state {ref.state} → {state}).")
        else:
            out.print(f"Campaign {ref.qualified_slug} is already {state}.")


_state_command("pause", CampaignState.PAUSED, "paused")
_state_command("resume", CampaignState.ACTIVE, "resumed")
_state_command("deactivate", CampaignState.INACTIVE, "deactivated")
_state_command("archive", CampaignState.ARCHIVED, "archived")
