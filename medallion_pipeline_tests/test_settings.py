"""Settings from MEDALLION_* variables, and the rule for the development PII key."""

from __future__ import annotations

import pytest

from medallion_pipeline.settings import DEV_PII_KEY, Settings, SettingsError


def test_defaults_are_the_embedded_mode():
    settings = Settings.from_env({})
    assert settings.embedded and settings.spark_mode == "local"
    assert settings.resolved_catalog_uri.endswith("/data/lake/_catalog/catalog.db")
    assert "login" in settings.allowed_event_types


def test_reads_and_types_variables():
    settings = Settings.from_env({
        "MEDALLION_LAKE_ROOT": "/srv/lake", "MEDALLION_KEEP_VERSIONS": "3",
        "MEDALLION_ALLOWED_EVENT_TYPES": "login, purchase", "MEDALLION_START_DATE": "2025-02-01",
        "MEDALLION_DQ_USER_ID_NULL_RATE_MAX": "0.05",
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


def test_development_pii_key_only_in_embedded_mode(caplog):
    assert Settings().resolved_pii_key() == DEV_PII_KEY
    assert "development key" in caplog.text
    assert Settings(pii_key="k").resolved_pii_key() == "k"
    with pytest.raises(SettingsError, match="MEDALLION_PII_KEY"):
        Settings(lake_root="s3://bucket/lake").resolved_pii_key()
