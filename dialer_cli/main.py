"""The `dialer` command: what ops run from a terminal.

A thin layer: every command parses its flags, opens the database and calls
`campaigns/`. This module only assembles the app from the command modules, each
of which has its own `typer.Typer`; they share `dialer_cli.common` and never import
this module. The configuration is read from the environment once, by the `dialer`
callback, and handed to each command as `ctx.obj` (`common.config_of`). A problem
with something the user controls is printed as one sentence on stderr with exit
status 2, never a traceback.
"""

from __future__ import annotations

import typer

from campaigns.core.config import DialerConfig
from dialer_cli import campaign, daemon, database, demo, dev, dialing, lists, reporting
from dialer_cli.common import user_errors

app = typer.Typer(
    name="dialer",
    help="Run outbound-calling campaigns: campaigns, prospect lists, the hopper and the daemon.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Top-level commands (`dialer init`, `dialer explain`, …): each module's `commands`, merged into
# `dialer` itself (a Typer added without a name), in the order `dialer --help` lists them.
for module in (database, dialing, daemon, dev, demo, reporting):
    app.add_typer(module.commands)

# Command groups: `dialer campaign …`, `dialer hopper …`, `dialer list …`, `dialer dnc …`.
app.add_typer(campaign.campaign_app, name="campaign")
app.add_typer(dialing.hopper_app, name="hopper")
app.add_typer(lists.list_app, name="list")
app.add_typer(lists.dnc_app, name="dnc")


@app.callback()
@user_errors
def configure(ctx: typer.Context) -> None:
    # The one read of the environment for the whole invocation; commands find it in ctx.obj.
    ctx.obj = DialerConfig.from_env()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
