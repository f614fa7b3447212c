"""Every ``MEDALLION_*`` setting in one place, read from the environment.

The defaults are the embedded mode: local directories under the project, local Spark, the local catalog
and log-only alerts. ``Settings`` is a plain, serializable value so the same object can be handed to a
Spark driver running elsewhere (EMR Serverless) as JSON.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEV_PII_KEY = "medallion-dev-only-insecure-pii-key"
DEFAULT_EVENT_TYPES = (
    "http_request",
    "login",
    "logout",
    "view_item",
    "add_to_cart",
    "purchase",
    "system",
)
USER_SCOPED_EVENT_TYPES = ("login", "view_item", "add_to_cart", "purchase")
# Where layer jobs run (SPEC section 5): in the Dagster process, as a spark-submit child process through
# Dagster Pipes, or on EMR Serverless through Dagster Pipes.
SPARK_MODES = ("local", "subprocess", "emr-serverless")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$")

log = logging.getLogger(__name__)


class SettingsError(ValueError):
    """A setting is missing or invalid."""


@dataclass(frozen=True)
class Settings:
    landing_root: str = str(PROJECT_ROOT / "data" / "landing")
    lake_root: str = str(PROJECT_ROOT / "data" / "lake")
    catalog_uri: str = ""  # empty: <lake_root>/_catalog/catalog.db
    start_date: str = "2024-01-01"
    pii_key: str = ""
    spark_mode: str = "local"
    spark_master: str = "local[*]"
    spark_conf: str = ""  # extra Spark configuration, a JSON object applied last: {"spark.driver.memory": "8g"}
    allowed_event_types: tuple[str, ...] = DEFAULT_EVENT_TYPES
    keep_versions: int = 5
    vacuum_grace_seconds: float = 3600.0  # vacuum keeps unleased orphans and just-replaced versions this long
    max_new_columns: int = 100
    # Incremental bronze: a day's version is made of at most this many segments (one directory per ingest,
    # referenced, not rewritten); the ingest that would exceed it rewrites the day into one. 1: always rewrite.
    bronze_max_segments: int = 16
    target_file_rows: int = 2_000_000
    # Landing sensor (SPEC sections 2 and 4): discovery mode, batching, and how much one tick may do.
    landing_mode: str = "listing"  # or "events": S3 ObjectCreated notifications from an SQS queue
    landing_queue_url: str = ""
    landing_lookback_days: int = 3  # listing mode: today and this many previous days
    landing_batch_files: int = 5
    landing_batch_wait_minutes: float = 5.0
    landing_sensor_interval_seconds: int = 30
    landing_tick_budget_seconds: float = 20.0  # events mode: stop draining the queue after this long
    landing_tick_max_messages: int = 10_000
    automation_interval_seconds: int = 30
    # Data-quality gates (SPEC section 3): blocking thresholds, then warning thresholds.
    dq_min_rows: int = 1
    dq_user_id_null_rate_max: float = 0.03
    dq_duplicate_rate_max: float = 0.02
    dq_quarantine_rate_max: float = 0.05
    dq_row_count_deviation_max: float = 0.5
    dq_row_count_history_days: int = 7
    dq_malformed_rate_max: float = 0.01
    # Alerts (SPEC section 7): the Dagster log always; SNS and Slack when configured.
    alert_sns_topic_arn: str = ""
    alert_slack_webhook_url: str = ""
    alert_min_severity: str = "WARN"
    dagster_url: str = "http://127.0.0.1:3000"
    alert_missing_data_deadline_hours: float = 2.0  # hours after midnight UTC for yesterday's landing files
    alert_gold_max_age_hours: float = 36.0  # newest gold partition's day may end at most this long ago
    # Remote Spark drivers (SPEC section 5): the subprocess and EMR Serverless launchers.
    pii_key_secret_arn: str = ""  # Secrets Manager secret holding the PII key, read by the EMR driver itself
    emr_application_id: str = ""
    emr_execution_role_arn: str = ""
    emr_job_bundle_uri: str = ""  # s3://bucket/prefix written by `medallion package-job`
    # Where the driver's Python comes from: "bundle" (the job bundle's pyenv.tar.gz and package zip) or "image"
    # (the application's custom image, deploy/docker/emr-serverless.Dockerfile; no bundle needed).
    emr_python: str = "bundle"
    emr_release_label: str = "emr-7.5.0"  # the application's release; the job bundle is built for its runtime
    emr_log_group: str = "/medallion/emr-serverless"
    emr_region: str = ""  # empty: the default AWS region
    emr_poll_interval_seconds: float = 10.0
    emr_timeout_minutes: int = 360

    @property
    def development_key_allowed(self) -> bool:
        """The development PII key is public (it is in the repository): it may pseudonymize only the demo's
        data — local Spark, and the landing, the lake and the catalog all local directories under the project."""
        if self.spark_mode != "local":
            return False
        roots = (self.landing_root, self.lake_root, self.resolved_catalog_uri)
        return all("://" not in root and Path(root).resolve().is_relative_to(PROJECT_ROOT) for root in roots)

    @property
    def extra_spark_conf(self) -> dict[str, str]:
        """``MEDALLION_SPARK_CONF`` as Spark configuration entries (validated by ``validate``)."""
        if not self.spark_conf:
            return {}
        return {key: str(value).lower() if isinstance(value, bool) else str(value)
                for key, value in json.loads(self.spark_conf).items()}

    @property
    def resolved_catalog_uri(self) -> str:
        return self.catalog_uri or f"{self.lake_root.rstrip('/')}/_catalog/catalog.db"

    def resolved_pii_key(self) -> str:
        """The HMAC key for pseudonymizing PII; the development key only for the demo's data."""
        if self.pii_key:
            return self.pii_key
        if not self.development_key_allowed:
            raise SettingsError(self._missing_pii_key())
        log.warning("MEDALLION_PII_KEY is not set: using the public development key (demo data under the "
                    "project only)")
        return DEV_PII_KEY

    def _missing_pii_key(self) -> str:
        return (f"MEDALLION_PII_KEY must be set: the development key is public and may only be used with local "
                f"Spark and every root (landing, lake, catalog) a local directory under {PROJECT_ROOT}")

    def without_secrets(self) -> Settings:
        """A copy safe to serialize into a job run's parameters: the PII key never leaves this process (a remote
        driver reads it from its own environment or from ``pii_key_secret_arn``)."""
        return replace(self, pii_key="")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Settings:
        raw = json.loads(text)
        raw["allowed_event_types"] = tuple(raw["allowed_event_types"])
        return cls(**raw)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Settings from ``MEDALLION_*`` environment variables; unset ones keep their defaults."""
        env = dict(os.environ if env is None else env)
        values: dict[str, object] = {}
        for f in fields(cls):
            name = f"MEDALLION_{f.name.upper()}"
            if name not in env or env[name] == "":
                continue
            raw = env[name]
            if f.name == "allowed_event_types":
                values[f.name] = tuple(v.strip() for v in raw.split(",") if v.strip())
            elif f.type in ("int", "float"):
                try:
                    values[f.name] = int(raw) if f.type == "int" else float(raw)
                except ValueError as exc:
                    raise SettingsError(f"{name} must be a number ({f.type}), got {raw!r}") from exc
            else:
                values[f.name] = raw
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        from datetime import date

        try:
            date.fromisoformat(self.start_date)
        except ValueError as exc:
            raise SettingsError(f"MEDALLION_START_DATE must be YYYY-MM-DD, got {self.start_date!r}") from exc
        if self.spark_mode not in SPARK_MODES:
            raise SettingsError(f"MEDALLION_SPARK_MODE {self.spark_mode!r} is not supported ({', '.join(SPARK_MODES)})")
        if self.landing_mode not in ("listing", "events"):
            raise SettingsError(f"MEDALLION_LANDING_MODE must be listing or events, got {self.landing_mode!r}")
        if self.landing_mode == "events" and not (self.landing_queue_url and self.landing_root.startswith("s3://")):
            raise SettingsError("MEDALLION_LANDING_MODE=events needs MEDALLION_LANDING_QUEUE_URL and an s3:// "
                                "MEDALLION_LANDING_ROOT")
        if self.landing_lookback_days < 0 or self.landing_batch_files < 1 or self.landing_batch_wait_minutes < 0:
            raise SettingsError("MEDALLION_LANDING_LOOKBACK_DAYS >= 0, MEDALLION_LANDING_BATCH_FILES >= 1 and "
                                "MEDALLION_LANDING_BATCH_WAIT_MINUTES >= 0")
        if self.alert_min_severity not in ("WARN", "ERROR"):
            raise SettingsError("MEDALLION_ALERT_MIN_SEVERITY must be WARN or ERROR")
        if self.keep_versions < 1:
            raise SettingsError("MEDALLION_KEEP_VERSIONS must be at least 1")
        if self.bronze_max_segments < 1:
            raise SettingsError("MEDALLION_BRONZE_MAX_SEGMENTS must be at least 1")
        if self.vacuum_grace_seconds < 0:
            raise SettingsError("MEDALLION_VACUUM_GRACE_SECONDS must be >= 0")
        if not 0 <= self.dq_quarantine_rate_max <= 1:
            raise SettingsError("MEDALLION_DQ_QUARANTINE_RATE_MAX must be within [0, 1]")
        self._validate_spark_conf()
        self._validate_remote_spark()
        # On EMR Serverless the driver reads the key from MEDALLION_PII_KEY_SECRET_ARN (checked above).
        if not self.pii_key and self.spark_mode != "emr-serverless" and not self.development_key_allowed:
            raise SettingsError(self._missing_pii_key())

    def _validate_spark_conf(self) -> None:
        if not self.spark_conf:
            return
        try:
            conf = json.loads(self.spark_conf)
        except ValueError as exc:
            raise SettingsError(f"MEDALLION_SPARK_CONF must be a JSON object, got {self.spark_conf!r}") from exc
        if not isinstance(conf, dict):
            raise SettingsError(f"MEDALLION_SPARK_CONF must be a JSON object, got {self.spark_conf!r}")
        for key, value in conf.items():
            if not key.startswith("spark.") or key == "spark.master":
                raise SettingsError(f"MEDALLION_SPARK_CONF: {key!r} is not a Spark setting it may set (keys start "
                                    "with 'spark.'; the master is MEDALLION_SPARK_MASTER)")
            if not isinstance(value, (str, int, float, bool)):
                raise SettingsError(f"MEDALLION_SPARK_CONF: {key!r} must be a string, number or boolean")
            if self.spark_mode == "emr-serverless" and " " in str(value):
                raise SettingsError(f"MEDALLION_SPARK_CONF: {key!r} contains a space, which EMR Serverless's "
                                    "sparkSubmitParameters cannot carry")

    def _validate_catalog_uri(self) -> None:
        from medallion_pipeline.resources.catalog import parse_glue_uri

        if self.catalog_uri.startswith("glue://"):
            try:
                parse_glue_uri(self.catalog_uri)
            except ValueError as exc:
                raise SettingsError(f"MEDALLION_CATALOG_URI: {exc}") from None
        elif "://" in self.catalog_uri and not self.catalog_uri.startswith("sqlite://"):
            raise SettingsError("MEDALLION_CATALOG_URI must be a SQLite file path or glue://<database>?state_table="
                                f"<DynamoDB table>, got {self.catalog_uri!r}")

    def _validate_remote_spark(self) -> None:
        """Rules for a lake outside this machine and for the EMR Serverless launcher."""
        if "://" in self.lake_root and not self.lake_root.startswith(("s3://", "file://")):
            raise SettingsError(f"MEDALLION_LAKE_ROOT must be a local directory or s3://, got {self.lake_root!r}")
        self._validate_catalog_uri()
        if self.lake_root.startswith("s3://") and not self.catalog_uri:
            raise SettingsError("an s3:// MEDALLION_LAKE_ROOT needs MEDALLION_CATALOG_URI (the embedded catalog is a "
                                "local file)")
        if self.pii_key_secret_arn and not _SECRET_ARN.match(self.pii_key_secret_arn):
            raise SettingsError("MEDALLION_PII_KEY_SECRET_ARN must be a Secrets Manager secret ARN")
        if not re.match(r"^emr-7\.\d+\.\d+$", self.emr_release_label):
            raise SettingsError("MEDALLION_EMR_RELEASE_LABEL must be an emr-7.x.y release (Spark 3.5, what the job "
                                f"bundle targets), got {self.emr_release_label!r}")
        if self.emr_poll_interval_seconds <= 0 or self.emr_timeout_minutes < 5:
            raise SettingsError("MEDALLION_EMR_POLL_INTERVAL_SECONDS > 0 and MEDALLION_EMR_TIMEOUT_MINUTES >= 5")
        if self.emr_python not in ("bundle", "image"):
            raise SettingsError(f"MEDALLION_EMR_PYTHON must be bundle or image, got {self.emr_python!r}")
        if self.spark_mode != "emr-serverless":
            return
        bundled = self.emr_python == "bundle"
        missing = [name for name, value in (
            ("MEDALLION_EMR_APPLICATION_ID", self.emr_application_id),
            ("MEDALLION_EMR_EXECUTION_ROLE_ARN", self.emr_execution_role_arn),
            ("MEDALLION_EMR_JOB_BUNDLE_URI", self.emr_job_bundle_uri or not bundled),
            ("MEDALLION_PII_KEY_SECRET_ARN", self.pii_key_secret_arn),
        ) if not value]
        if missing:
            raise SettingsError(f"MEDALLION_SPARK_MODE=emr-serverless needs {', '.join(missing)}")
        if not _ROLE_ARN.match(self.emr_execution_role_arn):
            raise SettingsError("MEDALLION_EMR_EXECUTION_ROLE_ARN must be an IAM role ARN")
        if bundled and not self.emr_job_bundle_uri.startswith("s3://"):
            raise SettingsError("MEDALLION_EMR_JOB_BUNDLE_URI must be an s3:// URI (see `medallion package-job`)")
        if not self.catalog_uri.startswith("glue://"):
            raise SettingsError("MEDALLION_SPARK_MODE=emr-serverless needs the AWS catalog, MEDALLION_CATALOG_URI="
                                "glue://<database>?state_table=<table> (the driver cannot reach a local catalog file)")
        if not (self.lake_root.startswith("s3://") and self.landing_root.startswith("s3://")):
            raise SettingsError("MEDALLION_SPARK_MODE=emr-serverless needs s3:// MEDALLION_LAKE_ROOT and "
                                "MEDALLION_LANDING_ROOT (the driver cannot see this machine's disk)")
