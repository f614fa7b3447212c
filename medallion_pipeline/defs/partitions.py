"""The one partitioning every layer shares: UTC days from ``MEDALLION_START_DATE`` through today."""

from datetime import date, timedelta

import dagster as dg

from medallion_pipeline.settings import Settings

# end_offset=1: logs land all day, so today is a partition as soon as its first files arrive.
daily_partitions = dg.DailyPartitionsDefinition(start_date=Settings.from_env().start_date, end_offset=1)
single_run = dg.BackfillPolicy.single_run()
OWNERS = ["team:data-platform"]


def contiguous_ranges(dts: list[str]) -> list[tuple[str, str]]:
    """``[01, 02, 04]`` -> ``[(01, 02), (04, 04)]``: one ranged run per stretch of consecutive days."""
    ranges: list[tuple[str, str]] = []
    for dt in sorted(dts):
        if ranges and date.fromisoformat(dt) - date.fromisoformat(ranges[-1][1]) == timedelta(days=1):
            ranges[-1] = (ranges[-1][0], dt)
        else:
            ranges.append((dt, dt))
    return ranges


def range_tags(start: str, end: str) -> dict[str, str]:
    """The tags that make a run cover the days ``start..end`` (one Spark application for the range)."""
    return {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
