"""Reading a run's asset check evaluations back from the Dagster instance, for tests."""

from __future__ import annotations

import dagster as dg


def check_evaluations(instance: dg.DagsterInstance, run_id: str) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    """The run's check evaluations by (asset, check): several assets declare checks of the same name
    (``schema_conforms``), so keying by name alone would keep one of them."""
    evaluations = {}
    for record in instance.event_log_storage.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        key = (evaluation.asset_key.to_user_string(), evaluation.check_name)
        assert key not in evaluations, f"{key} evaluated twice in one run"
        evaluations[key] = evaluation
    return evaluations


def declared_checks(defs: dg.Definitions) -> set[tuple[str, str]]:
    """Every (asset, check) the definitions declare."""
    return {(key.asset_key.to_user_string(), key.name) for assets in defs.assets for key in assets.check_keys}
