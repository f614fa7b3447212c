"""A code location for the production instance's tests: one daily-partitioned asset whose runs take a while
(``SLOW_DAY_SECONDS``), so that the instance's queue has runs to hold back or let through."""

import os
import time

import dagster as dg

DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01")


@dg.asset(partitions_def=DAYS)
def slow_day(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    time.sleep(float(os.environ["SLOW_DAY_SECONDS"]))
    return dg.MaterializeResult(metadata={"day": context.partition_key})


defs = dg.Definitions(assets=[slow_day],
                      jobs=[dg.define_asset_job("slow_days", selection=[slow_day], partitions_def=DAYS)])
