"""Settings from MEDALLION_* variables, and the rule for the development PII key."""

from __future__ import annotations

import pytest

from medallion_pipeline.settings import DEV_PII_KEY, PROJECT_ROOT, Settings, SettingsError


def test_defaults_are_the_embedded_mode():
    settings = Settings.from_env({})
    assert settings.development_key_allowed and settings.spark_mode == "local"
    assert settings.resolved_catalog_uri.endswith("/data/lake/_catalog/catalog.db")
    assert "login" in settings.allowed_event_types


def test_reads_and_types_variables():
    settings = Settings.from_env({
        "MEDALLION_LAKE_ROOT": "/srv/lake", "MEDALLION_KEEP_VERSIONS": "3",
        "MEDALLION_ALLOWED_EVENT_TYPES": "login, purchase", "MEDALLION_START_DATE": "2025-02-01",
        "MEDALLION_DQ_USER_ID_NULL_RATE_MAX": "0.05", "MEDALLION_PII_KEY": "k",
    })
    assert settings.lake_root == "/srv/lake" and settings.keep_versions == 3
    assert settings.dq_user_id_null_rate_max == 0.05
    assert settings.allowed_event_types == ("login", "purchase")
    assert Settings.from_json(settings.to_json()) == settings


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MEDALLION_KEEP_VERSIONS": "many"}, "must be a number"),
        ({"MEDALLION_DQ_DUPLICATE_RATE_MAX": "2%"}, "must be a number"),
        ({"MEDALLION_START_DATE": "01/02/2024"}, "YYYY-MM-DD"),
        ({"MEDALLION_SPARK_MODE": "yarn"}, "not supported"),
        ({"MEDALLION_KEEP_VERSIONS": "0"}, "at least 1"),
    ],
)
def test_rejects_invalid_values(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_development_pii_key_only_for_demo_data_under_the_project(caplog):
    assert Settings().resolved_pii_key() == DEV_PII_KEY
    assert "development key" in caplog.text
    assert Settings(pii_key="k").resolved_pii_key() == "k"
    under = PROJECT_ROOT / "data" / "elsewhere"
    assert Settings(landing_root=str(under / "landing"), lake_root=str(under / "lake")).resolved_pii_key() == DEV_PII_KEY
    for outside in (
        Settings(lake_root="s3://bucket/lake", catalog_uri="glue://db"),
        Settings(lake_root="/srv/lake"),
        Settings(landing_root="/srv/landing"),
        Settings(catalog_uri="/srv/catalog.db"),
        Settings(lake_root=str(PROJECT_ROOT / ".." / "lake")),  # resolved, not compared as text
        Settings(spark_mode="subprocess"),  # a separate driver: never the public key
    ):
        with pytest.raises(SettingsError, match="MEDALLION_PII_KEY must be set"):
            outside.resolved_pii_key()


def test_a_missing_pii_key_outside_the_demo_is_a_start_up_error():
    with pytest.raises(SettingsError, match="MEDALLION_PII_KEY must be set"):
        Settings.from_env({"MEDALLION_LAKE_ROOT": "/srv/lake"})
    with pytest.raises(SettingsError, match="MEDALLION_PII_KEY must be set"):
        Settings.from_env({"MEDALLION_SPARK_MODE": "subprocess"})
    assert Settings.from_env({"MEDALLION_LAKE_ROOT": "/srv/lake", "MEDALLION_PII_KEY": "k"}).pii_key == "k"
    assert Settings.from_env({}).pii_key == ""  # the demo: defaults under the project


def test_quarantine_rate_threshold_setting():
    assert Settings().dq_quarantine_rate_max == 0.05
    assert Settings.from_env({"MEDALLION_DQ_QUARANTINE_RATE_MAX": "0.2"}).dq_quarantine_rate_max == 0.2
    with pytest.raises(SettingsError, match="MEDALLION_DQ_QUARANTINE_RATE_MAX"):
        Settings.from_env({"MEDALLION_DQ_QUARANTINE_RATE_MAX": "1.5"})


EMR = {
    "MEDALLION_SPARK_MODE": "emr-serverless",
    "MEDALLION_EMR_APPLICATION_ID": "00fabc123",
    "MEDALLION_EMR_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/medallion-emr-job",
    "MEDALLION_EMR_JOB_BUNDLE_URI": "s3://artifacts/medallion/jobs",
    "MEDALLION_PII_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:medallion/pii-AbCdEf",
    "MEDALLION_LAKE_ROOT": "s3://lake/root",
    "MEDALLION_LANDING_ROOT": "s3://landing/logs",
    "MEDALLION_CATALOG_URI": "glue://medallion_prod?state_table=medallion-state",
}


def test_every_spark_mode_is_accepted():
    subprocess = Settings.from_env({"MEDALLION_SPARK_MODE": "subprocess", "MEDALLION_PII_KEY": "k"})
    assert subprocess.spark_mode == "subprocess" and not subprocess.development_key_allowed
    settings = Settings.from_env({**EMR, "MEDALLION_EMR_RELEASE_LABEL": "emr-7.11.0"})
    assert settings.spark_mode == "emr-serverless" and not settings.development_key_allowed
    assert settings.emr_release_label == "emr-7.11.0"


def test_the_aws_catalog_uri_names_the_glue_database_and_the_state_table():
    from medallion_pipeline.resources.catalog import parse_glue_uri

    settings = Settings.from_env(EMR)
    assert parse_glue_uri(settings.resolved_catalog_uri) == ("medallion_prod", "medallion-state")


def test_s3_lake_with_a_catalog():
    settings = Settings.from_env({"MEDALLION_LAKE_ROOT": "s3://lake/root", "MEDALLION_CATALOG_URI": "/srv/catalog.db",
                                  "MEDALLION_PII_KEY": "k"})
    assert settings.resolved_catalog_uri == "/srv/catalog.db"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MEDALLION_LAKE_ROOT": "s3://lake/root"}, "needs MEDALLION_CATALOG_URI"),
        ({"MEDALLION_LAKE_ROOT": "gs://lake/root"}, "local directory or s3://"),
        ({"MEDALLION_PII_KEY_SECRET_ARN": "medallion/pii"}, "Secrets Manager secret ARN"),
        ({"MEDALLION_EMR_RELEASE_LABEL": "emr-6.15.0"}, "emr-7.x.y release"),
        ({"MEDALLION_EMR_POLL_INTERVAL_SECONDS": "0"}, "POLL_INTERVAL"),
        ({"MEDALLION_EMR_TIMEOUT_MINUTES": "1"}, "TIMEOUT_MINUTES"),
        ({**EMR, "MEDALLION_EMR_APPLICATION_ID": ""}, "needs MEDALLION_EMR_APPLICATION_ID"),
        ({**EMR, "MEDALLION_EMR_EXECUTION_ROLE_ARN": ""}, "needs MEDALLION_EMR_EXECUTION_ROLE_ARN"),
        ({**EMR, "MEDALLION_EMR_JOB_BUNDLE_URI": ""}, "needs MEDALLION_EMR_JOB_BUNDLE_URI"),
        ({**EMR, "MEDALLION_PII_KEY_SECRET_ARN": ""}, "needs MEDALLION_PII_KEY_SECRET_ARN"),
        ({**EMR, "MEDALLION_EMR_EXECUTION_ROLE_ARN": "medallion-emr-job"}, "IAM role ARN"),
        ({**EMR, "MEDALLION_EMR_JOB_BUNDLE_URI": "/tmp/bundle"}, "must be an s3:// URI"),
        ({**EMR, "MEDALLION_EMR_PYTHON": "docker"}, "MEDALLION_EMR_PYTHON must be bundle or image"),
        ({**EMR, "MEDALLION_LANDING_ROOT": "/data/landing"}, "s3:// MEDALLION_LAKE_ROOT and"),
        ({**EMR, "MEDALLION_CATALOG_URI": "/srv/medallion/catalog.db"}, "emr-serverless needs the AWS catalog"),
        ({"MEDALLION_CATALOG_URI": "glue://medallion_prod"}, "state_table="),
        ({"MEDALLION_CATALOG_URI": "glue://?state_table=t"}, "state_table="),
        ({"MEDALLION_CATALOG_URI": "glue://db?state_table=t&region=eu"}, "state_table="),
        ({"MEDALLION_CATALOG_URI": "dynamodb://t"}, "SQLite file path or glue://"),
    ],
)
def test_rejects_invalid_remote_spark_settings(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_without_secrets_drops_only_the_pii_key():
    settings = Settings(pii_key="secret-key", lake_root="/srv/lake")
    safe = Settings.from_json(settings.without_secrets().to_json())
    assert safe.pii_key == "" and "secret-key" not in settings.without_secrets().to_json()
    assert safe.lake_root == "/srv/lake"


def test_spark_conf_is_a_json_object_of_spark_settings():
    settings = Settings.from_env({"MEDALLION_SPARK_CONF": '{"spark.executor.memory": "8g", '
                                                          '"spark.sql.shuffle.partitions": 64, "spark.sql.adaptive.enabled": false}'})
    assert settings.extra_spark_conf == {"spark.executor.memory": "8g", "spark.sql.shuffle.partitions": "64",
                                         "spark.sql.adaptive.enabled": "false"}
    assert Settings.from_json(settings.to_json()) == settings
    assert Settings().extra_spark_conf == {}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MEDALLION_SPARK_CONF": "spark.executor.memory=8g"}, "must be a JSON object"),
        ({"MEDALLION_SPARK_CONF": '["spark.executor.memory", "8g"]'}, "must be a JSON object"),
        ({"MEDALLION_SPARK_CONF": '{"executor.memory": "8g"}'}, "keys start with 'spark.'"),
        ({"MEDALLION_SPARK_CONF": '{"spark.master": "yarn"}'}, "MEDALLION_SPARK_MASTER"),
        ({"MEDALLION_SPARK_CONF": '{"spark.executor.memory": {"size": 8}}'}, "string, number or boolean"),
        ({**EMR, "MEDALLION_SPARK_CONF": '{"spark.driver.extraJavaOptions": "-Xss4m -Xmx2g"}'}, "contains a space"),
    ],
)
def test_rejects_invalid_spark_conf(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)
