"""The data dictionary: a policy for every column the pipeline writes, true to the tags and to the data, and
``medallion governance`` against a Glue database on a moto server (the ``aws`` fixture)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re

import boto3
import pytest
from pyspark.sql import functions as F

from medallion_pipeline.cli import main
from medallion_pipeline.jobs import LAYER_JOBS
from medallion_pipeline.jobs.environment import JobEnvironment
from medallion_pipeline.jobs.gold import GOLD_SCHEMAS
from medallion_pipeline.jobs.publish import read_published
from medallion_pipeline.schemas import bronze, silver
from medallion_pipeline.schemas.governance import (
    BRONZE_ONLY,
    HMAC,
    JOIN_KEY,
    MASKED,
    NONE,
    TREATMENTS,
    ColumnPolicy,
    dictionary,
    policy_for,
    render_markdown,
    table_columns,
)
from medallion_pipeline.settings import PROJECT_ROOT, Settings
from medallion_pipeline.tables import (
    ALL_TABLES,
    BRONZE_APP_LOGS,
    GLUE_TABLES,
    GOLD_ENDPOINT_STATS,
    GOLD_FUNNEL,
    METRICS_DQ,
    SILVER_APP_LOGS,
    SILVER_QUARANTINE,
    TableId,
)
from medallion_pipeline_tests.conftest import TEST_PII_KEY, event, write_landing

DT = "2024-01-01"
DB = "medallion_governance_test"
EMAIL, IP, OTHER_IP = "jane.doe@example.com", "203.0.113.7", "198.51.100.23"
RAW = (EMAIL, IP, OTHER_IP)
NEW_FIELD = "debug_note"


def policies(table: TableId) -> dict[str, ColumnPolicy]:
    return {p.column: p for p in dictionary() if p.table == table}


def columns_without_policy(table: TableId, columns: list[str]) -> list[str]:
    return [c for c in columns if policy_for(table, c) is None]


# --- the dictionary, from the schemas -------------------------------------------------------------------------

def test_every_column_the_schemas_declare_has_exactly_one_policy():
    lineage = list(silver.LINEAGE_COLUMNS)
    expected = {
        BRONZE_APP_LOGS: [*bronze.BronzeAppLogs.to_schema().columns, *bronze.METADATA_COLUMNS],
        SILVER_APP_LOGS: [*silver.SilverAppLogs.to_schema().columns, *lineage],
        SILVER_QUARANTINE: [silver.QUARANTINE_REASON, *silver.CONTRACT_COLUMNS, silver.EVENT_TS_RAW, *lineage],
        **{table: list(model.to_schema().columns) for table, model in GOLD_SCHEMAS.items()},
    }
    found = [(p.table, p.column) for p in dictionary()]
    assert len(found) == len(set(found))  # one policy per (table, column)
    assert {p.table for p in dictionary()} == set(ALL_TABLES)
    for table, columns in expected.items():
        assert list(policies(table)) == columns, table
        assert columns_without_policy(table, columns) == []
    assert all(p.treatment in TREATMENTS for p in dictionary())
    # The gold models the dictionary reads are the ones the gold job validates against.
    assert {t: table_columns(t) for t in GOLD_SCHEMAS} == {
        t: {n: c.dtype.type.simpleString() for n, c in m.to_schema().columns.items()} for t, m in GOLD_SCHEMAS.items()}


def test_a_column_or_table_nobody_classified_has_no_policy():
    assert columns_without_policy(GOLD_FUNNEL, ["login_users", "refund_users"]) == ["refund_users"]
    assert policy_for(METRICS_DQ, "host") is None
    with pytest.raises(KeyError, match="no column source"):
        dictionary([TableId("gold", "refunds")])


def test_raw_pii_stays_in_bronze_and_silver_protects_it():
    b, s, q = policies(BRONZE_APP_LOGS), policies(SILVER_APP_LOGS), policies(SILVER_QUARANTINE)
    assert (b["email"].treatment, b["client_ip"].treatment) == (BRONZE_ONLY, BRONZE_ONLY)
    assert b["email"].pii_class == b["client_ip"].pii_class == "direct"
    assert b["_corrupt_record"].treatment == BRONZE_ONLY and b["_corrupt_record"].is_pii
    for table in (s, q):
        assert (table["client_ip"].treatment, table["email"].treatment, table["user_id"].treatment) == (
            HMAC, MASKED, JOIN_KEY)
        assert table["client_ip"].is_pii and table["email"].is_pii and table["user_id"].is_pii
        assert table["message"].treatment == table["_rescued_data"].treatment == MASKED
        # Masked but not personal data: untagged, exactly as the silver job publishes them.
        assert table["path"].treatment == table["user_agent"].treatment == MASKED
        assert not table["path"].is_pii and not table["user_agent"].is_pii
    assert b["user_id"].treatment == JOIN_KEY and not b["event_id"].is_pii and b["event_id"].treatment == NONE
    assert q["event_ts_raw"].treatment == MASKED and q["event_ts_raw"].is_pii
    assert policies(GOLD_ENDPOINT_STATS)["path"].treatment == MASKED  # silver's masked path, grouped
    assert not any(p.is_pii for p in dictionary() if p.table.layer in ("gold", "metrics"))


def test_fields_that_arrive_later_follow_the_layers_rule():
    assert policy_for(BRONZE_APP_LOGS, NEW_FIELD) == ColumnPolicy(
        BRONZE_APP_LOGS, NEW_FIELD, "string", NONE, BRONZE_ONLY, policy_for(BRONZE_APP_LOGS, NEW_FIELD).note)
    for table in (SILVER_APP_LOGS, SILVER_QUARANTINE):
        new = policy_for(table, NEW_FIELD)
        assert (new.pii_class, new.treatment, new.is_pii) == ("free-text", MASKED, True)


def test_the_readme_data_dictionary_is_the_generated_one():
    readme = (PROJECT_ROOT / "README.md").read_text()
    match = re.search(r"## Data dictionary\n\n<!-- data dictionary: generated, do not edit -->\n(.*?)"
                      r"<!-- end of the data dictionary -->\n", readme, re.S)
    assert match, "README.md has no generated data dictionary section"
    assert match[1] == render_markdown(), "regenerate it: medallion governance --markdown"
    assert render_markdown().count("\n| `") == len(dictionary())
    assert match[1] != render_markdown().replace("| hmac |", "| masked |")  # an edited row would be caught


# --- the dictionary against what the pipeline publishes --------------------------------------------------------

@pytest.fixture(scope="module")
def published(tmp_path_factory, spark):
    """One day through every layer, with raw PII planted in every column the dictionary says is protected."""
    root = tmp_path_factory.mktemp("governance")
    settings = Settings(landing_root=str(root / "landing"), lake_root=str(root / "lake"), pii_key=TEST_PII_KEY)
    lines = [event(i, DT) for i in range(2, 40)]
    lines.append(event(0, DT, path=f"/users/{EMAIL}/orders", user_agent=f"curl from {OTHER_IP}",
                       message=f"mail {EMAIL} from {OTHER_IP}", bytes=EMAIL, **{NEW_FIELD: f"ping {EMAIL}"}))
    lines.append(event(1, DT, event_ts=f"at {EMAIL}"))  # quarantined: invalid_event_ts
    lines.append(f"not json {EMAIL}")
    write_landing(settings.landing_root, DT, "part-0.json", lines)
    env = JobEnvironment.from_settings(settings, run_id="governance-run")
    for job in LAYER_JOBS.values():
        job(spark, [DT], env)
    return env


def test_the_catalog_tags_exactly_the_dictionarys_pii_columns(published):
    for table in ALL_TABLES:
        version = published.catalog.current(table, [DT]).get(DT)
        assert version is not None, f"{table} was not published"
        names = [c.name for c in version.columns]
        assert columns_without_policy(table, names) == [], table
        declared = list(table_columns(table))
        assert [n for n in names if n in declared] == declared, table  # every declared column, in order
        for column in version.columns:
            policy = policy_for(table, column.name, column.type)
            assert (column.name, column.pii, column.type) == (column.name, policy.is_pii, policy.type), table
    for table in (BRONZE_APP_LOGS, SILVER_APP_LOGS):  # the new-field rule was exercised, not vacuous
        assert NEW_FIELD in [c.name for c in published.catalog.current(table, [DT])[DT].columns]


def _values(df, column: str) -> list[str]:
    return [r[0] for r in df.select(F.col(column).cast("string")).collect() if r[0] is not None]


def test_the_treatments_hold_on_the_published_data(spark, published):
    frames = {t: read_published(spark, published, t, [DT])
              for t in (BRONZE_APP_LOGS, SILVER_APP_LOGS, SILVER_QUARANTINE)}
    for name, policy in {**policies(BRONZE_APP_LOGS), NEW_FIELD: policy_for(BRONZE_APP_LOGS, NEW_FIELD)}.items():
        if policy.treatment == BRONZE_ONLY:  # really raw: the planted value is there
            assert any(raw in v for v in _values(frames[BRONZE_APP_LOGS], name) for raw in RAW), name
    for table in (SILVER_APP_LOGS, SILVER_QUARANTINE):
        df = frames[table]
        for name in df.columns:
            if name not in ("user_id", "_source_file", "dt"):
                assert not [v for v in _values(df, name) if any(raw in v for raw in RAW)], (table, name)
        for name in [*(n for n, p in policies(table).items() if p.treatment == MASKED), NEW_FIELD]:
            values = _values(df, name)
            if table == SILVER_APP_LOGS or name in ("email", "event_ts_raw"):
                assert any("<email>" in v or "<ip>" in v or v.startswith("***") for v in values), (table, name)
    silver_df = frames[SILVER_APP_LOGS]
    pseudonym = hmac.new(TEST_PII_KEY.encode(), IP.encode(), hashlib.sha256).hexdigest()
    assert set(_values(silver_df, "client_ip")) == {pseudonym}
    assert set(_values(silver_df, "user_id")) == set(_values(frames[BRONZE_APP_LOGS], "user_id")) == {"u_1"}


# --- medallion governance ----------------------------------------------------------------------------------------

def test_governance_prints_a_row_per_column(medallion_env, capsys):
    assert main(["governance"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["table", "column", "type", "pii_class", "treatment"]
    rows = lines[2:-1]
    assert len(rows) == len(dictionary()) and lines[-1] == f"({len(dictionary())} rows)"
    assert re.fullmatch(r"silver_app_logs\s+client_ip\s+string\s+direct\s+hmac", next(
        r for r in rows if r.startswith("silver_app_logs") and " client_ip " in r).strip())
    assert main(["governance", "--format", "json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["table"], r["column"]) for r in records] == [(p.table.sql_name, p.column) for p in dictionary()]
    assert {"table": "bronze_app_logs", "column": "email", "type": "string", "pii_class": "direct",
            "treatment": BRONZE_ONLY} in records
    assert main(["governance", "--markdown"]) == 0
    assert capsys.readouterr().out == render_markdown()


def _glue_columns(table: TableId, tag=lambda p: p.is_pii) -> list[dict]:
    return [{"Name": p.column, "Type": p.type, "Parameters": {"pii": "true" if tag(p) else "false"}}
            for p in dictionary([table])]


def _create_table(glue, table: TableId, columns: list[dict]) -> None:
    glue.create_table(DatabaseName=DB, TableInput={
        "Name": table.sql_name, "TableType": "EXTERNAL_TABLE", "PartitionKeys": [{"Name": "dt", "Type": "string"}],
        "StorageDescriptor": {"Columns": columns, "Location": f"s3://lake/{table.layer}/{table.name}"}})


@pytest.fixture
def glue(aws, medallion_env):
    """A Glue database on the moto server with every projected table (all but bronze) tagged as the dictionary
    says, plus new fields."""
    client = boto3.client("glue")
    client.create_database(DatabaseInput={"Name": DB})
    new_field = [{"Name": NEW_FIELD, "Type": "string"}]
    for table in GLUE_TABLES:
        extra = []
        if table in (SILVER_APP_LOGS, SILVER_QUARANTINE):
            extra = [{**new_field[0], "Parameters": {"pii": "true"}}]
        _create_table(client, table, [*_glue_columns(table), *extra])
    return client


def _replace_columns(glue, table: TableId, columns: list[dict]) -> None:
    glue.delete_table(DatabaseName=DB, Name=table.sql_name)
    _create_table(glue, table, columns)


def test_governance_passes_on_a_correctly_tagged_glue_database(glue, capsys):
    assert main(["governance", "--glue-database", DB]) == 0
    captured = capsys.readouterr()
    rows = captured.out.splitlines()[2:-1]
    assert len(rows) == len(dictionary(GLUE_TABLES)) + 2  # plus the new field in silver and quarantine
    assert re.search(r"silver_app_logs\s+client_ip\s+string\s+direct\s+hmac\s+true", captured.out)
    assert "bronze_app_logs" not in captured.out + captured.err  # not projected: raw PII, made of segments
    assert "not tagged" not in captured.err


def test_governance_fails_naming_an_untagged_pii_column(glue, capsys):
    untag_client_ip = _glue_columns(SILVER_APP_LOGS, lambda p: p.is_pii and p.column != "client_ip")
    _replace_columns(glue, SILVER_APP_LOGS, untag_client_ip)
    assert main(["governance", "--glue-database", DB]) == 1
    err = capsys.readouterr().err
    assert "PII columns not tagged pii=true" in err and "silver_app_logs.client_ip (pii=false)" in err
    assert "silver_app_logs.email" not in err


def test_governance_fails_on_a_pii_column_missing_in_glue_or_a_column_without_policy(glue, capsys):
    _replace_columns(glue, SILVER_APP_LOGS, [c for c in _glue_columns(SILVER_APP_LOGS) if c["Name"] != "client_ip"])
    _replace_columns(glue, GOLD_FUNNEL, [*_glue_columns(GOLD_FUNNEL), {"Name": "refund_users", "Type": "bigint"}])
    assert main(["governance", "--glue-database", DB]) == 1
    err = capsys.readouterr().err
    assert "silver_app_logs.client_ip (missing in Glue)" in err
    assert "columns without a policy" in err and "gold_funnel.refund_users" in err


def test_a_new_silver_field_untagged_in_glue_fails(glue, capsys):
    _replace_columns(glue, SILVER_QUARANTINE, [*_glue_columns(SILVER_QUARANTINE),
                                               {"Name": NEW_FIELD, "Type": "string", "Parameters": {"pii": "false"}}])
    assert main(["governance", "--glue-database", DB]) == 1
    assert f"silver_quarantine.{NEW_FIELD} (pii=false)" in capsys.readouterr().err


def test_a_table_absent_from_glue_is_reported_not_failed(glue, capsys):
    glue.delete_table(DatabaseName=DB, Name=SILVER_QUARANTINE.sql_name)
    assert main(["governance", "--glue-database", DB]) == 0
    captured = capsys.readouterr()
    assert "nothing published yet): silver_quarantine" in captured.err
    assert re.search(r"silver_quarantine\s+client_ip\s+string\s+direct\s+hmac\s+\(no table\)", captured.out)


def test_a_missing_glue_database_fails(aws, medallion_env, capsys):
    assert main(["governance", "--glue-database", "no_such_db"]) == 1
    assert "Glue database 'no_such_db' does not exist" in capsys.readouterr().err


def test_the_aws_catalog_setting_names_the_database(glue, monkeypatch, capsys):
    monkeypatch.setenv("MEDALLION_CATALOG_URI", f"glue://{DB}?state_table=medallion_state")
    _replace_columns(glue, SILVER_APP_LOGS, _glue_columns(SILVER_APP_LOGS, lambda p: False))
    assert main(["governance"]) == 1
    assert "silver_app_logs.user_id (pii=false)" in capsys.readouterr().err
