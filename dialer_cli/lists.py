"""`dialer list upload` and `dialer dnc …`: loading prospect and DNC files from a terminal.

`list upload` runs the same Dagster job the inbox sensor launches, in this
process, on a copy of the file placed in the bucket's inbox; so a list loaded
from the CLI and one dropped in the bucket take exactly the same path. Run
again after it was interrupted, it resumes the copy already in the inbox
(`campaigns.ingestion.interrupted.place_in_inbox`) rather than loading a second one.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich import box
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from campaigns.core.config import DialerConfig
from campaigns.core.errors import DialerError
from campaigns.core.lifecycle import UploadStatus
from campaigns.dialing import dnc as dnc_membership
from campaigns.ingestion import dnc, interrupted, upload_record
from campaigns.ingestion.bucket import Bucket, fitted_key
from campaigns.ingestion.inbox import (
    InboxFile,
    UploadOptions,
    parse_inbox_key,
    parse_options,
)
from campaigns.ingestion.registry_files import RegistryFile, RegistryKind
from campaigns.ingestion.registry_import import import_registry
from campaigns.ingestion.staging_table import OnBatch
from campaigns.registry.status import RULE_DAYS, registry_status
from campaigns.setup import registry
from dialer_cli.common import (
    JsonFlag,
    config_of,
    database,
    err,
    literal,
    out,
    plain,
    print_json,
    user_errors,
)

list_app = typer.Typer(help="Load prospect lists into campaigns.", no_args_is_help=True)
dnc_app = typer.Typer(help="Manage do-not-call lists.", no_args_is_help=True)


def _check_file(path: Path, what: str) -> None:
    if path.is_dir():
        raise DialerError(f"{path}: is a directory; name the {what} itself.")
    if not path.is_file():
        raise DialerError(f"{path}: no such file.")


class LoadedNotFiledAway(DialerError):
    """The rows were loaded, but the file could not be filed away afterwards (not a refusal)."""

    exit_code = 1


class UploadNotFinished(DialerError):
    """The run failed before the upload was loaded or refused (a fault, a lost claim): it resumes."""

    exit_code = 1


def run_upload_job(config: DialerConfig, partition_key: str, on_batch: OnBatch | None = None):
    """Run load_prospect_list for one partition in this process, telling `on_batch` of each staged
    batch; returns the Dagster result."""
    import dagster as dg

    from pipelines.definitions import defs, resources_for

    resources = resources_for(config)
    if on_batch is not None:
        resources["progress"] = on_batch

    # The configured instance folder (`DAGSTER_HOME`, the demo's own), so the run shows in its UI;
    # without one, a throwaway in-memory instance.
    instance = (dg.DagsterInstance.from_config(str(config.dagster_home)) if config.dagster_home
                else dg.DagsterInstance.ephemeral())
    with instance:
        instance.add_dynamic_partitions("uploads", [partition_key])
        job = defs.resolve_job_def("load_prospect_list")
        return job.execute_in_process(
            partition_key=partition_key,
            instance=instance,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
            resources=resources,
        )


def load_inbox_file(config: DialerConfig, target: InboxFile, on_batch: OnBatch | None = None):
    """Run load_prospect_list on a file already in the inbox; (the Dagster result, the upload's summary or None)."""
    result = run_upload_job(config, target.partition_key, on_batch)
    with database(config) as engine, engine.connect() as conn:
        info = upload_record.campaign_info(conn, target.workspace, target.campaign)
        uploaded = upload_record.latest_upload(conn, info.id, target.key)
        return result, upload_record.summary(conn, uploaded.id) if uploaded else None


def upload_payload(summary: upload_record.Summary, bucket: Bucket, campaign: str) -> dict:
    """An upload's summary as `dialer list upload --json` (and `dialer demo`) print it."""
    return {
        "rows": summary.rows,
        "loaded": summary.loaded,
        "duplicates": summary.duplicates,
        "invalid": summary.invalid,
        "dnc": summary.dnc,
        "warnings": summary.warnings,
        "rejects_file": bucket.url_of(summary.rejects_file) if summary.rejects_file else None,
        "upload_id": summary.upload_id,
        "campaign": campaign,
        "source": bucket.url_of(summary.archived_key) if summary.archived_key else None,
    }


def failure_message(result) -> str:
    for event in result.all_events:
        if event.is_step_failure:
            error = event.event_specific_data.error
            data = event.event_specific_data
            user = getattr(data, "user_failure_data", None)
            if user is not None and user.description:
                return user.description
            # Dagster wraps an unexpected error ("Error occurred while executing op …"): name the cause.
            while error is not None and error.cause is not None:
                error = error.cause
            return error.message.strip().splitlines()[-1] if error else "the load failed"
    return "the load failed"


@list_app.command("upload")
@user_errors
def upload(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(help="SLUG or WORKSPACE/SLUG.")],
    file: Annotated[Path, typer.Argument(help="Prospect CSV (.csv or .csv.gz).")],
    priority: Annotated[int | None, typer.Option(help="List priority 0–100 (higher dialed first).")] = None,
    dupe_days: Annotated[int | None, typer.Option(help="Days a loaded number counts as a duplicate; -1 disables.")] = None,
    expire_days: Annotated[int | None, typer.Option(help="Days before unresolved prospects expire.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Load one prospect list through the same Dagster job the inbox sensor runs, and print its summary.

    Exit 0 when the file was processed (even with rejected rows), 2 when the whole file was rejected,
    1 when its rows were loaded but the file could not be filed away (the inbox sensor finishes that)
    or the run stopped before the upload was loaded or refused (it resumes).
    """
    flags = {"priority": priority, "dupe_days": dupe_days, "expire_days": expire_days}
    try:
        options = parse_options({k: v for k, v in flags.items() if v is not None}, "flags")
    except DialerError as exc:
        # "flags: `dupe_days` must be …" reads better as "--dupe-days must be …".
        text = str(exc).removeprefix("flags: ")
        for name in flags:
            text = text.replace(f"`{name}`", "--" + name.replace("_", "-"))
        raise DialerError(text) from None
    _check_file(file, "prospect list")
    if not file.name.lower().endswith((".csv", ".csv.gz")):
        raise DialerError(f"{file}: expected a .csv or .csv.gz file.")
    config = config_of(ctx)
    with database(config) as engine, engine.connect() as conn:
        ref = registry.resolve_campaign(conn, campaign)
    bucket = Bucket.from_config(config)
    with database(config) as engine:
        placement = interrupted.place_in_inbox(
            engine, bucket, ref.workspace, ref.slug, file.name, lambda: file.open("rb"), file.stat().st_size,
            options, datetime.now(UTC),
        )
    target = placement.inbox_file
    if placement.copy:
        target = _copy_into_inbox(bucket, file, target, options)

    show_bar = not json_out and sys.stderr.isatty()
    progress = Progress(
        TextColumn("{task.description}", style="bold", markup=False), BarColumn(), TaskProgressColumn(),
        TextColumn("{task.fields[rows]:,} rows"), TimeElapsedColumn(),
        console=err, transient=True, disable=not show_bar,
    )
    with progress:
        task = progress.add_task(plain(f"loading {file.name}"), total=1.0, rows=0)
        result, summary = load_inbox_file(
            config, target, on_batch=lambda rows, share: progress.update(task, completed=share, rows=rows)
        )
    if not result.success:
        message = failure_message(result)
        if json_out:
            print_json({"error": message, **({} if summary is None else summary.as_dict())})
        if summary is not None and summary.status == UploadStatus.LOADED:
            raise LoadedNotFiledAway(
                f"{file.name}: upload {summary.upload_id} was loaded ({summary.rows:,} rows: {summary.loaded:,} "
                f"loaded, {summary.duplicates:,} duplicates, {summary.invalid:,} invalid, {summary.dnc:,} dnc), "
                f"but the file could not be filed away afterwards ({message.rstrip('.')}); it stays in the "
                "inbox and the inbox sensor finishes filing it away."
            )
        if summary is not None and summary.status == UploadStatus.PROCESSING:
            raise UploadNotFinished(
                f"{message.rstrip('.')}; upload {summary.upload_id} was not refused: it stays processing, "
                "and the inbox sensor, or this command run again, resumes it."
            )
        raise DialerError(message)
    payload = upload_payload(summary, bucket, ref.qualified_slug)
    if json_out:
        print_json(payload)
        return
    print_upload_summary(payload, f"{file.name} → {ref.qualified_slug} (upload {summary.upload_id})", summary.warnings)


def _copy_into_inbox(bucket: Bucket, file: Path, target: InboxFile, options: UploadOptions) -> InboxFile:
    """The file (and its options as a sidecar) at `target`, appearing whole or not at all; returns
    where it landed (`target`, unless another file took that key meanwhile: then a numbered one).

    Copied under a hidden `.part` name first, so neither the sensor nor a later
    run ever reads a copy this command did not finish; that name is fitted too,
    since `target`'s own may already use every byte a file name may have.
    """
    if options != UploadOptions():
        sidecar = {k: v for k, v in options.model_dump().items() if v is not None}
        bucket.write_text(target.sidecar_keys()[0], yaml.safe_dump(sidecar))
    partial = fitted_key(target.key + ".part")
    with file.open("rb") as source, bucket.open(partial, "wb") as destination:
        while chunk := source.read(1 << 20):
            destination.write(chunk)
    landed = parse_inbox_key(bucket.move(partial, target.key))
    if landed.key != target.key and options != UploadOptions():
        bucket.write_text(landed.sidecar_keys()[0], yaml.safe_dump(sidecar))
    return landed


def print_upload_summary(payload: dict, title: str, warnings: list[str]) -> None:
    """An upload's accounting as a one-row table, then its warnings and where its rejects went."""
    table = Table(title=literal(title))
    for column in ("rows", "loaded", "duplicates", "invalid", "dnc"):
        table.add_column(column, justify="right")
    table.add_row(*(f"{payload[k]:,}" for k in ("rows", "loaded", "duplicates", "invalid", "dnc")))
    out.print(table)
    for warning in warnings:
        out.print(Text.assemble(("warning: ", "bold yellow"), literal(warning)), soft_wrap=True)
    if payload["rejects_file"]:
        out.print(f"Rejected rows and their reasons: {payload['rejects_file']}", soft_wrap=True, markup=False)


def _split_list(name: str, workspace: str | None, engine) -> tuple[str, str]:
    if "/" in name:
        ws, _, list_name = name.partition("/")
        return ws, list_name
    if workspace:
        return workspace, name
    with engine.connect() as conn:
        names = registry.workspace_names(conn)
    if len(names) == 1:
        return names[0], name
    raise DialerError(
        f"DNC list `{name}`: name its workspace as WORKSPACE/{name} or with --workspace "
        f"(workspaces: {', '.join(names) or 'none yet'})."
    )


@dnc_app.command("import")
@user_errors
def dnc_import(
    ctx: typer.Context,
    list_name: Annotated[str, typer.Argument(metavar="LIST", help="LIST or WORKSPACE/LIST.")],
    file: Annotated[Path, typer.Argument(help="One number per line, area code,number pairs, or a CSV with a phone column.")],
    workspace: Annotated[str | None, typer.Option(help="Workspace of the list.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Add a file's numbers to a workspace's DNC list (created if missing)."""
    import re

    from campaigns.setup.settings import SLUG_PATTERN

    _check_file(file, "file of numbers")
    with database(config_of(ctx)) as engine:
        ws, name = _split_list(list_name, workspace, engine)
        if not re.match(SLUG_PATTERN, name):
            raise DialerError(f"DNC list name {name!r} must be lowercase letters, digits, '-' or '_'.")
        result = dnc.import_numbers(engine, ws, name, lambda: file.open("rb"), str(file), datetime.now(UTC))
    if json_out:
        print_json(result.as_dict())
        return
    out.print(
        f"DNC list {ws}/{name}: {result.rows:,} rows, {result.added:,} added, "
        f"{result.already_listed:,} already listed, {result.invalid:,} invalid.",
        markup=False,
    )
    for example in result.examples:
        out.print(f"  invalid: {example}", markup=False)


@dnc_app.command("lists")
@user_errors
def dnc_lists(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """Show every DNC list with its number count."""
    with database(config_of(ctx)) as engine, engine.connect() as conn:
        rows = dnc_membership.list_counts(conn)
    if json_out:
        print_json(rows)
        return
    table = Table("workspace", "list", "numbers")
    for row in rows:
        table.add_row(row["workspace"], row["list"], f"{row['numbers']:,}")
    out.print(table)



registry_app = typer.Typer(help="The National DNC Registry: import its files as versions, show them.",
                           no_args_is_help=True)
dnc_app.add_typer(registry_app, name="registry")


def _registry_files(paths: list[Path]) -> list[RegistryFile]:
    files = []
    for path in paths:
        if path.is_symlink():
            raise DialerError(f"{path}: is a symbolic link; name the registry file itself.")
        _check_file(path, "registry file")
        files.append(RegistryFile(str(path), lambda path=path: path.open("rb")))
    return files


def _day(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise DialerError(f"{flag} {value!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-11-02.") from None


def _area_codes(value: str | None) -> list[int]:
    if value is None:
        return []
    words = [w for w in value.replace(",", " ").split() if w]
    if not words or not all(w.isdigit() and len(w) == 3 for w in words):
        raise DialerError(f"--area-codes {value!r}: expected three-digit area codes separated by commas, e.g. 212,646.")
    return [int(w) for w in words]


@registry_app.command("import")
@user_errors
def registry_import(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(metavar="PATH", help="Full lists or change lists: plain, .gz or .zip.")],
    full: Annotated[bool, typer.Option("--full", help="Assert these are full lists.")] = False,
    changes: Annotated[bool, typer.Option("--changes", help="Assert these are change lists.")] = False,
    obtained_at: Annotated[str | None, typer.Option(
        "--obtained-at", metavar="DATE",
        help="The day the data was downloaded from the FTC (default: the files' earliest modification day, "
             "never later than today).")] = None,
    area_codes: Annotated[str | None, typer.Option(
        "--area-codes", metavar="LIST", help="Area codes the download covers, e.g. 212,646 (may have no numbers).",
    )] = None,
    json_out: JsonFlag = False,
) -> None:
    """Import National DNC Registry files as one new version; a refused file makes no version.

    The kind is read from the content (a third field A or D is a change list). A full list replaces the
    area codes it names (and --area-codes); a change list applies its adds and deletes to the newest version.
    """
    if full and changes:
        raise DialerError("give --full or --changes, not both.")
    kind = RegistryKind.FULL if full else RegistryKind.CHANGES if changes else None
    day, codes, files = _day(obtained_at, "--obtained-at"), _area_codes(area_codes), _registry_files(paths)
    now = datetime.now(UTC)
    if day is None:
        # The 31 days count from the download: the files' own date is the latest it can have been
        # (today would stretch the rule by however long the files sat on disk).
        day = min([now.date()] + [datetime.fromtimestamp(p.stat().st_mtime, UTC).date() for p in paths])
    with database(config_of(ctx)) as engine:
        result = import_registry(engine, files, now=now, kind=kind, obtained_on=day, area_codes=codes)
    if json_out:
        print_json(result.as_dict())
        return
    v = result.version
    shown = ", ".join(map(str, result.area_codes[:12])) + (", …" if len(result.area_codes) > 12 else "")
    counted = " (effective changes: an add of a listed number or a delete of an unlisted one is not counted)" \
        if v.kind == RegistryKind.CHANGES else ""
    out.print(
        f"National DNC Registry version {v.id} ({v.kind}, obtained {v.obtained_at.date().isoformat()}): "
        f"{result.records:,} records from {len(result.files)} file(s) for {len(result.area_codes)} area code(s) "
        f"({shown}); the version covers {v.area_codes:,} area codes, {v.numbers:,} numbers; "
        f"{v.added:,} added, {v.deleted:,} deleted{counted}; checksum {v.checksum[:12]}.",
        soft_wrap=True,
    )
    if result.sets_pruned:
        out.print(f"{result.sets_pruned:,} stored set(s) of older versions pruned (their records stay).")
    for warning in result.warnings:
        out.print(Text.assemble(("warning: ", "bold yellow"), literal(warning)), soft_wrap=True)


@registry_app.command("status")
@user_errors
def registry_versions(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """Show the registry's versions, newest first, and the current version's age against the 31-day rule."""
    moment = datetime.now(UTC)
    with database(config_of(ctx)) as engine, engine.connect() as conn:
        status = registry_status(conn, moment)
    if json_out:
        print_json(status.as_dict(moment))
        return
    if status.current is None:
        out.print("No National DNC Registry version yet: import one with `dialer dnc registry import PATH…`.")
        return
    table = Table(title="National DNC Registry versions", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1),
                  collapse_padding=True)
    for header in ("id", "kind", "obtained", "age (d)", "areas", "numbers", "added", "deleted", "checksum", "sets"):
        table.add_column(header, min_width=10 if header == "obtained" else None,
                         justify="left" if header in ("kind", "obtained", "checksum") else "right")
    for v in status.versions:
        table.add_row(str(v.id), v.kind, v.obtained_at.date().isoformat(), f"{v.age_days(moment):.1f}",
                      f"{v.area_codes:,}", f"{v.numbers:,}", f"{v.added:,}", f"{v.deleted:,}", v.checksum[:8],
                      "yes" if v.sets_kept else "no")
    out.print(table)
    age = status.current
    oldest = age.oldest_obtained_at.date().isoformat()
    if age.within_rule:
        out.print(f"Current version {age.version_id}: its oldest area code data was obtained {oldest}, "
                  f"{age.age_days:.1f} days ago, within the {RULE_DAYS}-day rule until "
                  f"{age.stale_from.isoformat(timespec='minutes')}.", soft_wrap=True)
    else:
        out.print(Text.assemble(("warning: ", "bold yellow"), literal(
            f"current version {age.version_id}: its oldest area code data was obtained {oldest}, "
            f"{age.age_days:.1f} days ago, past the {RULE_DAYS}-day rule; import a newer download.")), soft_wrap=True)
