"""The one partitioning every layer shares: UTC days from ``MEDALLION_START_DATE`` through today."""

import dagster as dg

from medallion_pipeline.settings import Settings

# end_offset=1: logs land all day, so today is a partition as soon as its first files arrive.
daily_partitions = dg.DailyPartitionsDefinition(start_date=Settings.from_env().start_date, end_offset=1)
single_run = dg.BackfillPolicy.single_run()
OWNERS = ["team:data-platform"]
