"""Where a layer job runs: in the Dagster process, as a spark-submit child, or on EMR Serverless (SPEC §5).

Launchers call ``jobs/`` (they start layer jobs), so they sit beside it rather than under ``resources/``,
which only wraps external systems and never imports the pipeline's jobs.
"""
