"""The `dialer` command: what ops run from a terminal.

A thin layer: every command parses its flags, opens the database and calls
`campaigns/`. The configuration is read from the environment once, by the
`dialer` callback, and handed to each command as `ctx.obj`. A problem with
something the user controls is printed as one sentence on stderr with exit
status 2, never a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

from campaigns.core import db
from campaigns.core.config import DialerConfig
from campaigns.core.errors import DialerError
from campaigns.core.lifecycle import CampaignState
from campaigns.reporting.explain import not_dialable_summary
from campaigns.reporting.status import campaign_status
from campaigns.setup import registry
from campaigns.setup.settings import load_settings_file

app = typer.Typer(
    name="dialer",
    help="Run outbound-calling campaigns: campaigns, prospect lists, the hopper and the daemon.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
campaign_app = typer.Typer(help="Create, inspect and steer campaigns.", no_args_is_help=True)
app.add_typer(campaign_app, name="campaign")

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def _now() -> datetime:
    return datetime.now(UTC)


def user_errors(fn: Callable) -> Callable:
    """Turn a DialerError into one red sentence and its exit status (2; 1 when the database refused)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with db.refusals_as_errors():
                return fn(*args, **kwargs)
        except DialerError as exc:
            # The sentence may quote file names or cells: never read it as markup.
            err.print(Text.assemble(("error: ", "bold red"), str(exc)), soft_wrap=True)
            raise typer.Exit(code=exc.exit_code) from None

    return wrapper


@app.callback()
def configure(ctx: typer.Context) -> None:
    # The one read of the environment for the whole invocation; commands find it in ctx.obj.
    ctx.obj = DialerConfig.from_env()


@contextmanager
def _database(config: DialerConfig, *, ready: bool = True):
    engine = db.make_engine(config.database_url)
    try:
        if ready:
            db.check_ready(engine)
        yield engine
    finally:
        engine.dispose()


def _print_json(payload) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str, ensure_ascii=False) + "\n")


@app.command()
@user_errors
def init(ctx: typer.Context) -> None:
    """Create or migrate the database (DIALER_DATABASE_URL, default a SQLite file under DIALER_HOME)."""
    with _database(ctx.obj, ready=False) as engine:
        before, after = db.migrate(engine)
        where = db.describe(engine)
    if before == after:
        out.print(f"Database {where} is up to date (revision {after}).")
    else:
        out.print(f"Database {where} migrated from {before or 'empty'} to revision {after}.")


@campaign_app.command("apply")
@user_errors
def campaign_apply(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Campaign YAML file.")],
    json_out: JsonFlag = False,
) -> None:
    """Create or update a campaign from a YAML file; applying the same file twice changes nothing."""
    settings, keys = load_settings_file(file)
    with _database(ctx.obj) as engine, engine.begin() as conn:
        result = registry.apply_campaign(conn, settings, _now(), keys_given=keys)
    if json_out:
        _print_json(
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
    now = _now()
    with _database(ctx.obj) as engine, engine.connect() as conn:
        reports = [campaign_status(conn, c.id, now) for c in registry.list_campaigns(conn)]
    if json_out:
        _print_json([r.as_dict() for r in reports])
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
    with _database(ctx.obj) as engine, engine.connect() as conn:
        ref = registry.resolve_campaign(conn, campaign)
        settings = registry.load_settings(conn, ref.id)
    data = settings.model_dump(mode="json")
    if json_out:
        _print_json(data)
    else:
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


@campaign_app.command("status")
@user_errors
def campaign_status_cmd(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(help="SLUG or WORKSPACE/SLUG.")],
    at: Annotated[
        str | None, typer.Option("--at", help="Decide dialability at this ISO-8601 instant; default now.")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Show whether a campaign is Running, Stopped, Completed or Inactive, with prospect counts
    and the top reasons its prospects may not be dialed right now."""
    from dialer_cli.dialing import parse_at

    now = parse_at(at)
    with _database(ctx.obj) as engine, engine.connect() as conn:
        ref = registry.resolve_campaign(conn, campaign)
        report = campaign_status(conn, ref.id, now)
        dialability = not_dialable_summary(conn, ref.id, now)
    if json_out:
        _print_json({**report.as_dict(), "dialability": dialability})
        return
    out.print(
        f"[bold]{report.workspace}/{report.slug}[/] — {report.name}\n"
        f"state {report.state}, status [bold]{report.status}[/], "
        f"{report.calls_in_flight} calls in flight, hopper {report.hopper_depth}, "
        f"{report.uploads} uploads"
    )
    if report.paced_by:
        out.print(f"paced by daemon {report.paced_by} (lease until {report.lease_expires_at:%Y-%m-%d %H:%M:%S} UTC "
                  "unless renewed)")
    else:
        out.print("no daemon holds its lease: nothing paces it until a `dialer daemon` runs")
    table = Table("prospect state", "count")
    for state, count in report.prospects.items():
        table.add_row(state, str(count))
    table.add_row("[bold]total[/]", str(sum(report.prospects.values())))
    out.print(table)
    out.print(
        f"{dialability['dialable_now']} of {dialability['open_prospects']} ready, queued or callback "
        "prospects may be dialed now."
    )
    if dialability["top_reasons"]:
        reasons = Table("not dialable now because", "prospects", "for example")
        for reason in dialability["top_reasons"]:
            reasons.add_row(reason["code"], str(reason["prospects"]), Text(reason["message"]))
        out.print(reasons)


def _state_command(name: str, state: CampaignState, verb: str) -> None:
    @campaign_app.command(name, help=f"Set the campaign's state to {state}.")
    @user_errors
    def command(
        ctx: typer.Context,
        campaign: Annotated[str, typer.Argument(help="SLUG or WORKSPACE/SLUG.")],
    ) -> None:
        with _database(ctx.obj) as engine, engine.begin() as conn:
            ref = registry.resolve_campaign(conn, campaign)
            changed = registry.set_state(conn, ref, state, _now())
        if changed:
            out.print(f"Campaign {ref.qualified_slug} {verb} (state {ref.state} → {state}).")
        else:
            out.print(f"Campaign {ref.qualified_slug} is already {state}.")


_state_command("pause", CampaignState.PAUSED, "paused")
_state_command("resume", CampaignState.ACTIVE, "resumed")
_state_command("deactivate", CampaignState.INACTIVE, "deactivated")
_state_command("archive", CampaignState.ARCHIVED, "archived")


def main() -> None:
    import dialer_cli.daemon  # noqa: F401  (registers `daemon` and `simulator`)
    import dialer_cli.demo  # noqa: F401  (registers `demo`)
    import dialer_cli.dev  # noqa: F401  (registers `dev`)
    import dialer_cli.dialing  # noqa: F401  (registers `explain` and `hopper`)
    import dialer_cli.lists  # noqa: F401  (registers `list` and `dnc`)
    import dialer_cli.reporting  # noqa: F401  (registers `report`)

    app()


if __name__ == "__main__":
    main()
