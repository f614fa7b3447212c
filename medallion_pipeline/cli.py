"""``medallion``: generate sample logs, run the pipeline through Dagster, query and manage the catalog."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import shutil
import signal
import sys
from datetime import date

from medallion_pipeline.settings import PROJECT_ROOT, Settings, SettingsError

LAYER_GROUPS = ("bronze", "silver", "gold", "metrics")


def ensure_dagster_home() -> str:
    """``DAGSTER_HOME``, defaulting to ``.dagster_home`` in the project with the project's dagster.yaml."""
    home = os.environ.get("DAGSTER_HOME") or str(PROJECT_ROOT / ".dagster_home")
    os.makedirs(home, exist_ok=True)
    config = os.path.join(home, "dagster.yaml")
    if not os.path.exists(config) and (PROJECT_ROOT / "dagster.yaml").exists():
        shutil.copy(PROJECT_ROOT / "dagster.yaml", config)
    os.environ["DAGSTER_HOME"] = home
    return home


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from medallion_pipeline.sample_data import Dirt, generate

    dirt = Dirt(bad_day=args.bad_day, new_field_from_day=args.new_field_day or None)
    summary = generate(
        args.landing or settings.landing_root, date.fromisoformat(args.start or settings.start_date), args.days, args.events_per_day,
        args.files_per_day, seed=args.seed, dirt=dirt,
    )
    print(f"generated {summary.events:,} events ({summary.lines:,} lines, {summary.files:,} files, "
          f"{summary.bytes / 1e6:.1f} MB) for {', '.join(summary.days)} into {args.landing or settings.landing_root}")
    return 0


def _selection(select: list[str] | None):
    import dagster as dg

    if not select:
        return dg.AssetSelection.all()
    selection = None
    for item in select:
        part = dg.AssetSelection.groups(item) if item in LAYER_GROUPS else dg.AssetSelection.keys(item)
        selection = part if selection is None else selection | part
    return selection


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    import dagster as dg

    from medallion_pipeline.definitions import build_definitions

    from medallion_pipeline.defs.alerts import alert_after_cli_run
    from medallion_pipeline.defs.automation import DOWNSTREAM_OF_SILVER, published_days_waiting
    from medallion_pipeline.defs.partitions import contiguous_ranges, range_tags
    from medallion_pipeline.resources.catalog import open_catalog

    ensure_dagster_home()
    defs = build_definitions(settings)

    def materialize(start: str, end: str, selection) -> dg.ExecuteInProcessResult:
        result = dg.materialize(
            assets=list(defs.assets), resources=defs.resources, selection=selection, instance=instance,
            tags=range_tags(start, end), raise_on_error=False,
        )
        alert_after_cli_run(instance, result.run_id, logging.getLogger("medallion.alerts"))
        for event in result.all_events:
            if event.is_step_failure:
                print(f"step {event.step_key} failed: {event.step_failure_data.error.message.strip()}",
                      file=sys.stderr)
        print(f"run {result.run_id}: {'SUCCESS' if result.success else 'FAILURE'} for {start}..{end}")
        return result

    with dg.DagsterInstance.get() as instance:
        result = materialize(args.date_from, args.date_to or args.date_from, _selection(args.select))
        if not result.success:
            # What the daemon's downstream_of_published_days sensor does: the days that passed their gates
            # were published, so build their gold and metrics now.
            waiting = published_days_waiting(instance, open_catalog(settings.resolved_catalog_uri, settings.lake_root))
            for start, end in contiguous_ranges(list(waiting)):
                print(f"building gold and metrics for the published days {start}..{end}")
                materialize(start, end, DOWNSTREAM_OF_SILVER)
    return 0 if result.success else 1


def _print_rows(columns: list[str], rows: list[tuple], fmt: str) -> None:
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    elif fmt == "json":
        for row in rows:
            print(json.dumps(dict(zip(columns, row)), default=str))
    else:
        cells = [[("NULL" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)) for v in r] for r in rows]
        widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
        print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
        print("  ".join("-" * w for w in widths))
        for r in cells:
            print("  ".join(v.ljust(w) for v, w in zip(r, widths)))
        print(f"({len(rows)} rows)")


def cmd_query(args: argparse.Namespace, settings: Settings) -> int:
    from medallion_pipeline.query import run_query
    from medallion_pipeline.resources.catalog import open_catalog

    import duckdb

    try:
        columns, rows = run_query(open_catalog(settings.resolved_catalog_uri, settings.lake_root), args.sql)
    except (duckdb.Error, OSError) as exc:  # OSError: reading an s3:// lake (network, access denied)
        print(f"medallion: {exc}", file=sys.stderr)
        return 1
    _print_rows(columns, rows, args.format)
    return 0


def cmd_catalog(args: argparse.Namespace, settings: Settings) -> int:
    from medallion_pipeline.resources.catalog import open_catalog

    catalog = open_catalog(settings.resolved_catalog_uri, settings.lake_root)
    if args.action == "sync":
        return _sync_glue(catalog, args.table)
    for table, description, columns in catalog.tables():
        print(f"{table.qualified} ({table.sql_name}): {description}")
        print(f"  columns: {', '.join(c.name + (' [pii]' if c.pii else '') for c in columns)}")
        current = {p.dt: p for p in catalog.partitions(table)}
        history: dict[str, list] = {}
        for event in catalog.history(table):
            history.setdefault(event.dt, []).append(event)
        for dt in sorted(set(current) | set(history)):
            p = current.get(dt)
            state = f"{p.row_count:>10,} rows  {p.version_id}" if p else f"{'':>10}       (nothing published)"
            print(f"  dt={dt}  {state}  ({len(history.get(dt, []))} events, "
                  f"{len(catalog.versions(table, dt))} versions kept)")
            if args.history:
                for h in history.get(dt, []):
                    print(f"      {h.at}  {h.action:<8} {h.version_id}  from {h.previous_version_id or '-'}"
                          f"  {h.reason}")
    return 0


def _sync_glue(catalog, table_name: str | None) -> int:
    """Reconcile the Glue projection from the catalog's state (after a failed post-commit sync)."""
    from medallion_pipeline.resources.catalog.dynamodb import DynamoCatalog
    from medallion_pipeline.tables import ALL_TABLES, GLUE_TABLES, TableId

    if not isinstance(catalog, DynamoCatalog):
        print("catalog sync: the embedded catalog has no Glue projection (MEDALLION_CATALOG_URI=glue://...)",
              file=sys.stderr)
        return 2
    tables = [TableId.parse(table_name)] if table_name else list(ALL_TABLES)
    for table in tables:
        if not catalog.partitions(table):
            continue
        r = catalog.sync(table)
        if table not in GLUE_TABLES:
            print(f"{table.sql_name}: not projected to Glue (raw PII, partitions made of segments)"
                  + ("; the table an earlier release created was removed" if r.dropped_table else ""))
            continue
        print(f"{table.sql_name}: {'created, ' if r.created_table else ''}{r.partitions_created} partitions created, "
              f"{r.partitions_updated} moved, {r.partitions_deleted} deleted, {r.partitions_unchanged} unchanged"
              + (f"; new columns {', '.join(r.added_columns)}" if r.added_columns else ""))
    return 0


def cmd_governance(args: argparse.Namespace, settings: Settings) -> int:
    """The PII class and treatment of every column; with a Glue database, exit 1 if a PII column is untagged."""
    from medallion_pipeline.schemas.governance import audit_glue, dictionary, render_markdown

    if args.markdown:
        print(render_markdown(), end="")
        return 0
    database = args.glue_database
    if database is None and settings.catalog_uri.startswith("glue://"):
        from medallion_pipeline.resources.catalog import parse_glue_uri

        database = parse_glue_uri(settings.catalog_uri)[0]
    columns = ["table", "column", "type", "pii_class", "treatment"]
    if database is None:
        _print_rows(columns, [(p.table.sql_name, p.column, p.type, p.pii_class, p.treatment) for p in dictionary()],
                    args.format)
        return 0
    try:
        audit = audit_glue(database)
    except LookupError as exc:
        print(f"medallion: {exc}", file=sys.stderr)
        return 1
    _print_rows([*columns, "glue_pii"], audit.rows, args.format)
    if audit.absent_tables:
        print(f"not in Glue database {database} (nothing published yet): {', '.join(audit.absent_tables)}",
              file=sys.stderr)
    for problem, names in (("PII columns not tagged pii=true", audit.untagged),
                           ("columns without a policy in schemas/governance.py", audit.unclassified)):
        if names:
            print(f"medallion: {problem} in Glue database {database}: {', '.join(names)}", file=sys.stderr)
    return 0 if audit.passed else 1


def cmd_vacuum(args: argparse.Namespace, settings: Settings) -> int:
    import dagster as dg

    from medallion_pipeline.defs.maintenance import vacuum_lake

    ensure_dagster_home()
    # The Dagster instance says which runs are in progress: their staged versions are kept whatever their age.
    with dg.DagsterInstance.get() as instance:
        removed = vacuum_lake(settings, instance, keep=args.keep, grace_seconds=args.grace_seconds)
    for location in removed:
        print(f"removed {location}")
    print(f"{len(removed)} locations removed")
    return 0


def cmd_rollback(args: argparse.Namespace, settings: Settings) -> int:
    """Point a partition back to its previous version, and record it in Dagster as a materialization."""
    import dagster as dg

    from medallion_pipeline.resources.catalog import open_catalog
    from medallion_pipeline.tables import TableId

    table = TableId.parse(args.table)
    catalog = open_catalog(settings.resolved_catalog_uri, settings.lake_root)
    before = catalog.current(table, [args.dt]).get(args.dt)
    try:
        restored = catalog.rollback(table, args.dt, reason=args.reason)
    except LookupError as exc:
        print(f"medallion: {exc}", file=sys.stderr)
        return 1
    ensure_dagster_home()
    with dg.DagsterInstance.get() as instance:
        # A materialization (not an observation): the data changed, so downstream partitions are stale.
        instance.report_runless_asset_event(dg.AssetMaterialization(
            asset_key=table.asset_path, partition=args.dt,
            description=f"rolled back: {args.reason}",
            metadata={
                "rollback": True, "reason": args.reason, "rolled_back_from": before.version_id if before else "-",
                "version_id": restored.version_id, "dagster/row_count": restored.row_count,
                "location": dg.MetadataValue.path(restored.location),
            },
        ))
    print(f"{table} dt={args.dt}: {before.version_id if before else '-'} -> {restored.version_id} "
          f"({restored.row_count:,} rows); recorded in Dagster")
    return 0


def cmd_package_job(args: argparse.Namespace, settings: Settings) -> int:
    """Build the EMR Serverless job bundle and upload it (see medallion_pipeline/packaging.py)."""
    import tempfile

    from pathlib import Path

    from medallion_pipeline.packaging import build_bundle, upload_bundle

    destination = args.to or settings.emr_job_bundle_uri
    if not destination.startswith("s3://"):
        print("medallion: package-job needs --to s3://bucket/prefix (or MEDALLION_EMR_JOB_BUNDLE_URI)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="medallion-bundle-") as scratch:
        bundle = build_bundle(Path(args.out) if args.out else Path(scratch))
        size = bundle.path("pyenv.tar.gz").stat().st_size
        print(f"built the job bundle in {bundle.seconds:.1f} s: pyenv.tar.gz {size / 1e6:.0f} MB, "
              f"{len(bundle.distributions)} distributions")
        for uri in upload_bundle(bundle, destination):
            print(f"uploaded {uri}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medallion", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write synthetic logs into landing")
    gen.add_argument("--days", type=int, default=3)
    gen.add_argument("--start", help="first day (default: MEDALLION_START_DATE)")
    gen.add_argument("--events-per-day", type=int, default=200_000)
    gen.add_argument("--files-per-day", type=int, default=2_000)
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--landing", help="landing directory (default: MEDALLION_LANDING_ROOT)")
    gen.add_argument("--bad-day", type=int, help="1-based day made to fail the silver gates")
    gen.add_argument("--new-field-day", type=int, default=2, help="1-based day a new field 'region' appears (0: never)")
    gen.set_defaults(func=cmd_generate)

    run = sub.add_parser("run", help="materialize the pipeline for a date range through Dagster")
    run.add_argument("--from", dest="date_from", required=True)
    run.add_argument("--to", dest="date_to")
    run.add_argument("--select", nargs="*", help=f"layers ({', '.join(LAYER_GROUPS)}) or asset keys")
    run.set_defaults(func=cmd_run)

    query = sub.add_parser("query", help="SQL over published tables (<layer>_<name>)")
    query.add_argument("sql")
    query.add_argument("--format", choices=("table", "csv", "json"), default="table")
    query.set_defaults(func=cmd_query)

    cat = sub.add_parser("catalog", help="tables, partitions, current versions")
    cat.add_argument("action", nargs="?", choices=("show", "sync"), default="show",
                     help="show (default) or sync: reconcile the Glue projection from DynamoDB")
    cat.add_argument("--table", help="sync only this table (silver.app_logs)")
    cat.add_argument("--history", action="store_true", help="show every publish and rollback")
    cat.set_defaults(func=cmd_catalog)

    gov = sub.add_parser("governance", help="PII class and treatment per table and column; checks Glue's pii tags")
    gov.add_argument("--glue-database", help="check this Glue database's column pii parameters (default: the "
                                             "database of a glue:// MEDALLION_CATALOG_URI)")
    gov.add_argument("--format", choices=("table", "csv", "json"), default="table")
    gov.add_argument("--markdown", action="store_true", help="print the README's data dictionary section")
    gov.set_defaults(func=cmd_governance)

    rb = sub.add_parser("rollback", help="point a partition back to its previous version")
    rb.add_argument("table", help="e.g. silver.app_logs")
    rb.add_argument("dt")
    rb.add_argument("--reason", default="manual rollback")
    rb.set_defaults(func=cmd_rollback)

    vac = sub.add_parser("vacuum", help="delete old versions and orphaned writes")
    vac.add_argument("--keep", type=int, help="versions to keep per partition (default MEDALLION_KEEP_VERSIONS)")
    vac.add_argument("--grace-seconds", type=float,
                     help="leave younger unleased orphans and just-replaced versions (default "
                          "MEDALLION_VACUUM_GRACE_SECONDS); a running run's staged versions are always kept")
    vac.set_defaults(func=cmd_vacuum)

    pkg = sub.add_parser("package-job", help="build the EMR Serverless job bundle and upload it to S3")
    pkg.add_argument("--to", help="s3://bucket/prefix (default MEDALLION_EMR_JOB_BUNDLE_URI)")
    pkg.add_argument("--out", help="also keep the bundle in this directory")
    pkg.set_defaults(func=cmd_package_job)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"medallion: {exc}", file=sys.stderr)
        return 2
    return args.func(args, settings)


def run() -> None:
    """The ``medallion`` console script."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Piped into `head`: stop quietly instead of a traceback on the closed pipe.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())


if __name__ == "__main__":
    run()
