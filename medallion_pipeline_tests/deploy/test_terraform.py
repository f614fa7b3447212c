"""Static checks of the AWS data plane in deploy/terraform.

Providers cannot be downloaded here, so the suite runs no ``terraform validate`` or ``plan`` (this machine
happens to hold an AWS provider in /opt/tf-plugins, used by hand: deploy/README.md; CI machines are not
promised one). Every .tf file is parsed with python-hcl2 and each rule is a small function over one module's parsed blocks that returns the
violations it finds (empty: the rule holds). Every rule is also applied to a deliberately bad snippet, so a
rule that could never fail shows up as a failing test. ``terraform fmt`` and checkov run as the CLIs.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

import hcl2
import pytest
import yaml

from medallion_pipeline.resources.landing import LOG_SUFFIXES
from medallion_pipeline.settings import PROJECT_ROOT, Settings

TERRAFORM = PROJECT_ROOT / "deploy" / "terraform"
CHECKOV = PROJECT_ROOT / ".venv-tools" / "bin" / "checkov"
HCL = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)

# Statements whose Resource may be "*", with why. Nothing else may name "*".
STAR_RESOURCE_ALLOWED = {
    ("modules/kms", "key"): 'a key policy\'s Resource is always "*", which means the key itself',
}
# The EMR job role may write only below this (modules/iam: local.lake_objects, fed by the root module).
LAKE_OBJECTS = "${var.lake_bucket_arn}/${var.lake_prefix}/"
S3_WRITES = ("s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectAcl",
             "s3:PutObjectTagging", "s3:RestoreObject", "s3:AbortMultipartUpload")
POLICY_ATTRIBUTES = {"aws_iam_role": "assume_role_policy", "aws_iam_role_policy": "policy",
                     "aws_iam_policy": "policy", "aws_s3_bucket_policy": "policy",
                     "aws_sqs_queue_policy": "policy", "aws_sns_topic_policy": "policy", "aws_kms_key": "policy"}


# -- parsing ------------------------------------------------------------------------------------------------

@dataclass
class Module:
    """One Terraform module's blocks, keyed by (type, name); ``path`` is relative to deploy/terraform."""

    path: str
    resources: dict[tuple[str, str], dict] = field(default_factory=dict)
    data: dict[tuple[str, str], dict] = field(default_factory=dict)
    variables: dict[str, dict] = field(default_factory=dict)
    outputs: dict[str, dict] = field(default_factory=dict)
    locals: dict[str, object] = field(default_factory=dict)
    module_calls: dict[str, dict] = field(default_factory=dict)
    text: str = ""

    def add(self, text: str) -> None:
        parsed = hcl2.loads(text, serialization_options=HCL)
        self.text += text
        for kind, target in (("resource", self.resources), ("data", self.data)):
            for block in parsed.get(kind, []):
                for type_, named in block.items():
                    target.update({(type_, name): body for name, body in named.items()})
        for kind, target in (("variable", self.variables), ("output", self.outputs), ("module", self.module_calls)):
            for block in parsed.get(kind, []):
                target.update(block)
        for block in parsed.get("locals", []):
            self.locals.update(block)

    def of_type(self, type_: str) -> dict[str, dict]:
        return {name: body for (t, name), body in self.resources.items() if t == type_}

    def document(self, reference: object) -> tuple[str, dict] | None:
        """The policy document a ``data.aws_iam_policy_document.<name>.json`` reference names."""
        match = re.search(r"data\.aws_iam_policy_document\.(\w+)(\[0\])?\.json", str(reference))
        if not match or ("aws_iam_policy_document", match.group(1)) not in self.data:
            return None
        return match.group(1), self.data[("aws_iam_policy_document", match.group(1))]

    def resolve(self, value: object) -> object:
        """``value`` with each ``${local.x}`` element replaced by the local's value (how the policies name ARNs)."""
        if isinstance(value, list):
            return [item for v in value for item in as_list(self.resolve(v))]
        local = re.fullmatch(r"\$\{local\.(\w+)\}", str(value))
        if local and local.group(1) in self.locals:
            return self.resolve(self.locals[local.group(1)])
        return value


def module_from(text: str, path: str = "snippet") -> Module:
    module = Module(path)
    module.add(text)
    return module


def load_modules() -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for tf in sorted(TERRAFORM.rglob("*.tf")):
        if ".terraform" in tf.parts:
            continue
        path = tf.parent.relative_to(TERRAFORM).as_posix()
        modules.setdefault(path, Module(path)).add(tf.read_text())
    return modules


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    return load_modules()


def refers_to(value: object, type_: str, name: str) -> bool:
    return re.search(rf"\b{re.escape(type_)}\.{re.escape(name)}\.", str(value)) is not None


def attached_to(module: Module, type_: str, bucket: str) -> list[dict]:
    """The resources of ``type_`` whose ``bucket`` is the given aws_s3_bucket."""
    return [body for body in module.of_type(type_).values() if refers_to(body.get("bucket"), "aws_s3_bucket", bucket)]


def as_list(value: object) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def statements(module: Module):
    """(document name, statement) for every statement of every policy document in the module."""
    for (type_, name), body in module.data.items():
        if type_ == "aws_iam_policy_document":
            for statement in body.get("statement", []):
                yield name, statement


def label(name: str, statement: dict) -> str:
    return f"data.aws_iam_policy_document.{name} statement {statement.get('sid', '(no sid)')}"


# -- rules: S3 -------------------------------------------------------------------------------------------------

def log_destinations(module: Module) -> set[str]:
    return {m.group(1) for body in module.of_type("aws_s3_bucket_logging").values()
            if (m := re.search(r"aws_s3_bucket\.(\w+)\.", str(body.get("target_bucket"))))}


def bucket_encryption_violations(module: Module) -> list[str]:
    """SSE-KMS with a key on every bucket; SSE-S3 on an access-log destination, the one kind AWS supports."""
    problems = []
    destinations = log_destinations(module)
    for bucket in module.of_type("aws_s3_bucket"):
        configs = attached_to(module, "aws_s3_bucket_server_side_encryption_configuration", bucket)
        if not configs:
            problems.append(f"aws_s3_bucket.{bucket} has no aws_s3_bucket_server_side_encryption_configuration")
            continue
        for rule in configs[0].get("rule", []):
            default = (rule.get("apply_server_side_encryption_by_default") or [{}])[0]
            if bucket in destinations:
                if default.get("sse_algorithm") != "AES256":
                    problems.append(f"aws_s3_bucket.{bucket} receives access logs, so it must use SSE-S3 (AES256)")
            elif default.get("sse_algorithm") != "aws:kms" or not default.get("kms_master_key_id"):
                problems.append(f"aws_s3_bucket.{bucket} is not encrypted with aws:kms and a kms_master_key_id")
    return problems


def bucket_versioning_violations(module: Module) -> list[str]:
    problems = []
    for bucket in module.of_type("aws_s3_bucket"):
        statuses = [c.get("status") for v in attached_to(module, "aws_s3_bucket_versioning", bucket)
                    for c in v.get("versioning_configuration", [])]
        if statuses != ["Enabled"]:
            problems.append(f"aws_s3_bucket.{bucket} versioning is {statuses or 'not configured'}, not Enabled")
    return problems


def public_access_violations(module: Module) -> list[str]:
    flags = ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
    problems = []
    for bucket in module.of_type("aws_s3_bucket"):
        blocks = attached_to(module, "aws_s3_bucket_public_access_block", bucket)
        open_flags = [f for f in flags if not blocks or blocks[0].get(f) is not True]
        if open_flags:
            problems.append(f"aws_s3_bucket.{bucket} public access block lacks {', '.join(open_flags)} = true")
    return problems


def denies_insecure_transport(statement: dict, bucket: str) -> bool:
    resources = [str(r) for r in as_list(statement.get("resources"))]
    return (
        statement.get("effect") == "Deny"
        and "s3:*" in as_list(statement.get("actions"))
        and any(p.get("type") == "*" and p.get("identifiers") == ["*"] for p in statement.get("principals", []))
        and any(c.get("test") == "Bool" and c.get("variable") == "aws:SecureTransport" and c.get("values") == ["false"]
                for c in statement.get("condition", []))
        and any(refers_to(r, "aws_s3_bucket", bucket) and not r.endswith("/*") for r in resources)
        and any(refers_to(r, "aws_s3_bucket", bucket) and r.endswith("/*") for r in resources)
    )


def tls_only_violations(module: Module) -> list[str]:
    problems = []
    for bucket in module.of_type("aws_s3_bucket"):
        documents = [module.document(p.get("policy")) for p in attached_to(module, "aws_s3_bucket_policy", bucket)]
        if not any(doc and any(denies_insecure_transport(s, bucket) for s in doc[1].get("statement", []))
                   for doc in documents):
            problems.append(f"aws_s3_bucket.{bucket} has no policy denying s3:* on the bucket and its objects "
                            "when aws:SecureTransport is false")
    return problems


# -- rules: SQS ------------------------------------------------------------------------------------------------

def queue_violations(module: Module) -> list[str]:
    """Every queue is KMS-encrypted; every queue that is not itself a dead-letter queue redrives to one."""
    queues = module.of_type("aws_sqs_queue")
    dead_letter = {name for name in queues
                   if any(refers_to(q.get("redrive_policy"), "aws_sqs_queue", name) for q in queues.values())}
    problems = []
    for name, queue in queues.items():
        if not queue.get("kms_master_key_id"):
            problems.append(f"aws_sqs_queue.{name} is not encrypted with a KMS key")
        if name not in dead_letter and not re.search(r"deadLetterTargetArn\s*=\s*aws_sqs_queue\.\w+\.arn",
                                                     str(queue.get("redrive_policy", ""))):
            problems.append(f"aws_sqs_queue.{name} has no redrive_policy to a dead-letter queue")
    return problems


def queue_policy_violations(module: Module) -> list[str]:
    """A service may send to a queue only from a named source ARN of this account."""
    problems = []
    for name, policy in module.of_type("aws_sqs_queue_policy").items():
        doc = module.document(policy.get("policy"))
        if doc is None:
            problems.append(f"aws_sqs_queue_policy.{name} is not a readable policy document")
            continue
        for statement in doc[1].get("statement", []):
            tested = {c.get("variable") for c in statement.get("condition", [])}
            if statement.get("effect", "Allow") == "Allow" and not {"aws:SourceArn", "aws:SourceAccount"} <= tested:
                problems.append(f"{label(doc[0], statement)} lacks aws:SourceArn and aws:SourceAccount conditions")
    return problems


# -- rules: IAM ------------------------------------------------------------------------------------------------

def wildcard_action_violations(module: Module) -> list[str]:
    """No Allow grants "*" or "<service>:*", nor uses NotAction (a grant of everything else). A Deny of s3:*
    (the TLS-only bucket policies) is the safe direction and allowed."""
    problems = []
    for name, statement in statements(module):
        if statement.get("effect", "Allow") != "Allow":
            continue
        if statement.get("not_actions"):
            problems.append(f"{label(name, statement)} allows NotAction")
        for action in as_list(statement.get("actions")):
            if action == "*" or re.fullmatch(r"[A-Za-z0-9-]+:\*", str(action)):
                problems.append(f"{label(name, statement)} allows {action}")
    return problems


def names_star(resource: object) -> bool:
    return resource == "*" or '"*"' in str(resource)


def wildcard_resource_violations(module: Module) -> list[str]:
    """ "*" (or NotResource) only in the statements STAR_RESOURCE_ALLOWED justifies."""
    problems = []
    for name, statement in statements(module):
        if (module.path, name) in STAR_RESOURCE_ALLOWED:
            continue
        if statement.get("not_resources") or any(names_star(r) for r in as_list(statement.get("resources"))):
            problems.append(f'{label(name, statement)} in {module.path} applies to "*" or NotResource')
    return problems


def unreadable_policy_violations(module: Module) -> list[str]:
    """Every policy is a data.aws_iam_policy_document the rules above read, and no role gets another kind."""
    problems = []
    for type_, attribute in POLICY_ATTRIBUTES.items():
        for name, body in module.of_type(type_).items():
            if attribute in body and module.document(body[attribute]) is None:
                problems.append(f"{type_}.{name}.{attribute} is not a data.aws_iam_policy_document in this module")
    for name, role in module.of_type("aws_iam_role").items():
        for attribute in ("managed_policy_arns", "inline_policy"):
            if attribute in role:
                problems.append(f"aws_iam_role.{name} sets {attribute}")
    for name in module.of_type("aws_iam_role_policy_attachment"):
        problems.append(f"aws_iam_role_policy_attachment.{name} attaches a policy the rules do not read")
    return problems


def is_s3_write(action: str) -> bool:
    pattern = action.lower()
    return (any(fnmatchcase(write.lower(), pattern) for write in S3_WRITES)
            or pattern.startswith(("s3:put", "s3:delete")))


def role_documents(module: Module, role: str) -> list[tuple[str, dict]]:
    return [doc for body in module.of_type("aws_iam_role_policy").values()
            if refers_to(body.get("role"), "aws_iam_role", role) and (doc := module.document(body.get("policy")))]


def writes_outside_lake_violations(module: Module, role: str) -> list[str]:
    """Every S3 write the role's policies allow is below the lake prefix of the lake bucket."""
    problems = []
    for name, doc in role_documents(module, role):
        for statement in doc.get("statement", []):
            if statement.get("effect", "Allow") != "Allow":
                continue
            writes = [a for a in as_list(statement.get("actions")) if is_s3_write(str(a))]
            if statement.get("not_actions"):
                writes.append("NotAction")
            outside = [r for r in as_list(module.resolve(statement.get("resources")))
                       if not str(r).startswith(LAKE_OBJECTS)]
            if writes and (outside or statement.get("not_resources")):
                problems.append(f"aws_iam_role.{role}: {label(name, statement)} allows {', '.join(writes)} on "
                                f"{outside or 'NotResource'}, outside {LAKE_OBJECTS}*")
    return problems


# -- rules: EMR Serverless, DynamoDB -------------------------------------------------------------------------

def emr_application_violations(module: Module) -> list[str]:
    problems = []
    for name, app in module.of_type("aws_emrserverless_application").items():
        where = f"aws_emrserverless_application.{name}"
        capacity = (app.get("maximum_capacity") or [{}])[0]
        if not all(capacity.get(k) for k in ("cpu", "memory", "disk")):
            problems.append(f"{where} has no maximum_capacity with cpu, memory and disk (the cost guardrail)")
        stop = (app.get("auto_stop_configuration") or [{}])[0]
        if stop.get("enabled") is not True or not stop.get("idle_timeout_minutes"):
            problems.append(f"{where} does not auto-stop after an idle timeout")
        if (app.get("auto_start_configuration") or [{}])[0].get("enabled") is not True:
            problems.append(f"{where} does not auto-start")
        if str(app.get("type", "")).lower() != "spark":
            problems.append(f"{where} is not a Spark application")
    return problems


def dynamodb_violations(module: Module) -> list[str]:
    problems = []
    for name, table in module.of_type("aws_dynamodb_table").items():
        where = f"aws_dynamodb_table.{name}"
        if (table.get("point_in_time_recovery") or [{}])[0].get("enabled") is not True:
            problems.append(f"{where} has no point-in-time recovery")
        sse = (table.get("server_side_encryption") or [{}])[0]
        if sse.get("enabled") is not True or not sse.get("kms_key_arn"):
            problems.append(f"{where} is not encrypted with the customer managed key")
        if table.get("deletion_protection_enabled") is not True:
            problems.append(f"{where} has no deletion protection")
    return problems


# -- rules: style ----------------------------------------------------------------------------------------------

def description_violations(module: Module) -> list[str]:
    return ([f"variable {n} in {module.path} has no description" for n, v in module.variables.items()
             if not v.get("description")]
            + [f"output {n} in {module.path} has no description" for n, o in module.outputs.items()
               if not o.get("description")])


def unused_variable_violations(module: Module) -> list[str]:
    return [f"variable {n} in {module.path} is never used" for n in module.variables
            if not re.search(rf"\bvar\.{re.escape(n)}\b", module.text)]


SKIP = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?$", re.MULTILINE)


def skip_without_reason_violations(path: str, text: str) -> list[str]:
    return [f"{path}: checkov skip {m.group(1)} has no reason" for m in SKIP.finditer(text)
            if len((m.group(2) or "").strip()) < 20]


def rule_application(rule, modules: dict[str, Module]) -> list[str]:
    return [problem for module in modules.values() for problem in rule(module)]


# -- the deployment keeps the rules ---------------------------------------------------------------------------

MODULE_RULES = [bucket_encryption_violations, bucket_versioning_violations, public_access_violations,
                tls_only_violations, queue_violations, queue_policy_violations, wildcard_action_violations,
                wildcard_resource_violations, unreadable_policy_violations, emr_application_violations,
                dynamodb_violations, description_violations, unused_variable_violations]


@pytest.mark.parametrize("rule", MODULE_RULES, ids=lambda rule: rule.__name__)
def test_every_module_keeps_the_rule(rule, modules):
    assert rule_application(rule, modules) == []


def test_the_rules_see_the_resources_they_guard(modules):
    """A rule over zero resources passes vacuously: each guarded kind must be there."""
    storage, iam = modules["modules/storage"], modules["modules/iam"]
    assert set(storage.of_type("aws_s3_bucket")) == {"landing", "lake", "access_logs"}
    assert log_destinations(storage) == {"access_logs"}
    assert set(modules["modules/notifications"].of_type("aws_sqs_queue")) == {"landing", "dlq"}
    assert set(iam.of_type("aws_iam_role")) == {"emr_job", "dagster"}
    assert len(modules["modules/emr"].of_type("aws_emrserverless_application")) == 1
    assert len(modules["modules/state"].of_type("aws_dynamodb_table")) == 1
    assert sum(1 for m in modules.values() for _ in statements(m)) > 40


def test_the_access_log_bucket_uses_sse_s3_and_the_data_buckets_the_cmk(modules):
    storage = modules["modules/storage"]
    sse = "aws_s3_bucket_server_side_encryption_configuration"
    algorithm = {bucket: attached_to(storage, sse, bucket)[0]["rule"][0]["apply_server_side_encryption_by_default"][0]
                 for bucket in ("landing", "lake", "access_logs")}
    assert algorithm["access_logs"] == {"sse_algorithm": "AES256"}
    assert algorithm["landing"] == algorithm["lake"] == {"sse_algorithm": "aws:kms",
                                                         "kms_master_key_id": "${var.kms_key_arn}"}
    kms = modules["modules/kms"].of_type("aws_kms_key")
    assert [key.get("enable_key_rotation") for key in kms.values()] == [True]


def test_the_emr_job_role_writes_only_below_the_lake_prefix(modules):
    iam = modules["modules/iam"]
    assert writes_outside_lake_violations(iam, "emr_job") == []
    # ... and it does write there, so the rule is looking at the right policy.
    assert any(is_s3_write(a) for _, doc in role_documents(iam, "emr_job")
               for s in doc["statement"] for a in s["actions"])
    # The variables the rule trusts are the lake bucket and the lake prefix.
    call = modules["."].module_calls["iam"]
    assert (call["lake_bucket_arn"], call["lake_prefix"]) == ("${module.storage.lake_bucket_arn}", "${var.lake_prefix}")


def suffix_problems(filters: list[str], accepted: set[str]) -> list[str]:
    """S3 refuses a notification configuration whose suffix filters overlap (one ends with another), and
    every suffix the sensor accepts must reach the queue through some filter."""
    problems = [f"{a} overlaps {b}" for a in filters for b in filters if a != b and b.endswith(a)]
    problems += [f"{f}: the sensor ignores it" for f in filters if f not in accepted]
    problems += [f"{s}: no filter matches it" for s in sorted(accepted) if not any(s.endswith(f) for f in filters)]
    return problems


def test_the_suffix_rule_flags_overlapping_and_missing_filters():
    assert suffix_problems([".gz", ".json.gz"], {".gz", ".json.gz"}) == [".gz overlaps .json.gz"]
    assert suffix_problems([".json", ".ndjson"], {".json", ".ndjson"}) == []  # the dot is part of the suffix
    assert suffix_problems([".json"], {".json", ".jsonl"}) == [".jsonl: no filter matches it"]
    assert suffix_problems([".json", ".csv"], {".json"}) == [".csv: the sensor ignores it"]


def test_a_dead_lettered_notification_alarms_on_the_alert_topic(modules):
    notifications = modules["modules/notifications"]
    [alarm] = notifications.of_type("aws_cloudwatch_metric_alarm").values()
    assert alarm["dimensions"] == {"QueueName": "${aws_sqs_queue.dlq.name}"}
    assert (alarm["metric_name"], alarm["comparison_operator"], alarm["threshold"]) == (
        "ApproximateNumberOfMessagesVisible", "GreaterThanThreshold", 0)
    assert alarm["alarm_actions"] == ["${var.alarm_topic_arn}"]
    assert modules["."].module_calls["notifications"]["alarm_topic_arn"] == "${module.alerts.topic_arn}"
    # The encrypted topic admits CloudWatch: in its policy and in the key's.
    topic = modules["modules/alerts"].data[("aws_iam_policy_document", "alerts")]["statement"]
    key = modules["modules/kms"].data[("aws_iam_policy_document", "key")]["statement"]
    for statements in (topic, key):
        assert any(s["principals"][0]["identifiers"] == ["cloudwatch.amazonaws.com"] for s in statements)


def test_a_plan_cannot_destroy_the_lake_or_the_catalog_state(modules):
    lake = modules["modules/storage"].of_type("aws_s3_bucket")["lake"]
    table = modules["modules/state"].of_type("aws_dynamodb_table")["state"]
    for resource in (lake, table):
        assert resource["lifecycle"][0]["prevent_destroy"] is True


def test_the_landing_queue_hears_only_the_landing_bucket_for_the_log_suffixes_the_sensor_reads(modules):
    notifications = modules["modules/notifications"]
    statement = notifications.data[("aws_iam_policy_document", "landing_queue")]["statement"][0]
    conditions = {c["variable"]: c["values"] for c in statement["condition"]}
    assert conditions["aws:SourceArn"] == ["${var.landing_bucket_arn}"]
    assert modules["."].module_calls["notifications"]["landing_bucket_arn"] == "${module.storage.landing_bucket_arn}"
    sensor_suffixes = {suffix + gz for suffix in LOG_SUFFIXES for gz in ("", ".gz")}
    filters = notifications.locals["log_suffixes"]
    assert suffix_problems(filters, sensor_suffixes) == []
    queue = notifications.of_type("aws_s3_bucket_notification")["landing"]["dynamic"][0]["queue"]["content"][0]
    assert queue["events"] == ["s3:ObjectCreated:*"] and queue["filter_prefix"] == "${var.landing_prefix}/"


def test_the_state_table_has_the_key_schema_the_catalog_uses(modules):
    from medallion_pipeline.resources.catalog.dynamo_state import DynamoState

    class Recorder:
        class exceptions:  # noqa: N801 - boto3's naming
            ResourceInUseException = RuntimeError

        def create_table(self, **request):
            self.request = request

        def get_waiter(self, name):
            return type("Waiter", (), {"wait": lambda self, **kwargs: None})()

    catalog = type("Catalog", (DynamoState,), {})()
    catalog.client, catalog.table_name = Recorder(), "t"
    catalog.create_table()
    request = catalog.client.request
    table = modules["modules/state"].of_type("aws_dynamodb_table")["state"]
    assert table["billing_mode"] == request["BillingMode"]
    assert {"HASH": table["hash_key"], "RANGE": table["range_key"]} == \
        {k["KeyType"]: k["AttributeName"] for k in request["KeySchema"]}
    assert {(a["name"], a["type"]) for a in table["attribute"]} == \
        {(a["AttributeName"], a["AttributeType"]) for a in request["AttributeDefinitions"]}


def test_defaults_match_what_the_code_and_dagster_yaml_use(modules):
    root = modules["."]
    assert root.variables["emr_release_label"]["default"] == Settings().emr_release_label
    instance = yaml.safe_load((PROJECT_ROOT / "deploy" / "dagster.yaml").read_text())
    assert root.locals["compute_logs_prefix"] == instance["compute_logs"]["config"]["prefix"]
    assert root.locals["project_tag_key"] == "project"
    budget = modules["modules/budget"].of_type("aws_budgets_budget")["monthly"]
    assert budget["cost_filter"][0]["name"] == "TagKeyValue"


def test_every_checkov_skip_has_a_reason():
    problems = [p for tf in sorted(TERRAFORM.rglob("*.tf"))
                for p in skip_without_reason_violations(tf.relative_to(TERRAFORM).as_posix(), tf.read_text())]
    assert problems == []


# -- each rule catches a bad snippet -------------------------------------------------------------------------

BUCKET_WITHOUT_CONTROLS = '''
resource "aws_s3_bucket" "raw" {
  bucket = "raw"
}
resource "aws_s3_bucket_server_side_encryption_configuration" "raw" {
  bucket = aws_s3_bucket.raw.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}
resource "aws_s3_bucket_versioning" "raw" {
  bucket = aws_s3_bucket.raw.id
  versioning_configuration {
    status = "Suspended"
  }
}
resource "aws_s3_bucket_public_access_block" "raw" {
  bucket                  = aws_s3_bucket.raw.id
  block_public_acls       = true
  block_public_policy     = false
  ignore_public_acls      = true
  restrict_public_buckets = true
}
resource "aws_s3_bucket_policy" "raw" {
  bucket = aws_s3_bucket.raw.id
  policy = data.aws_iam_policy_document.raw.json
}
data "aws_iam_policy_document" "raw" {
  statement {
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = [aws_s3_bucket.raw.arn, "${aws_s3_bucket.raw.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}
'''


def test_bucket_rules_flag_a_bucket_without_kms_versioning_public_access_block_or_tls_policy():
    bad = module_from(BUCKET_WITHOUT_CONTROLS)
    assert bucket_encryption_violations(bad) == [
        "aws_s3_bucket.raw is not encrypted with aws:kms and a kms_master_key_id"]
    assert bucket_versioning_violations(bad) == ["aws_s3_bucket.raw versioning is ['Suspended'], not Enabled"]
    assert public_access_violations(bad) == ["aws_s3_bucket.raw public access block lacks block_public_policy = true"]
    assert tls_only_violations(bad) == ["aws_s3_bucket.raw has no policy denying s3:* on the bucket and its objects "
                                        "when aws:SecureTransport is false"]
    bare = module_from('resource "aws_s3_bucket" "bare" {\n  bucket = "bare"\n}\n')
    assert all(len(rule(bare)) == 1 for rule in (bucket_encryption_violations, bucket_versioning_violations,
                                                 public_access_violations, tls_only_violations))


def test_encryption_rule_flags_a_kms_encrypted_access_log_destination():
    logging = 'resource "aws_s3_bucket_logging" "x" {\n  bucket = "y"\n  target_bucket = aws_s3_bucket.raw.id\n}\n'
    bad = module_from(BUCKET_WITHOUT_CONTROLS.replace('sse_algorithm = "AES256"', 'sse_algorithm = "aws:kms"') + logging)
    assert bucket_encryption_violations(bad) == [
        "aws_s3_bucket.raw receives access logs, so it must use SSE-S3 (AES256)"]


def test_queue_rules_flag_a_queue_without_dlq_or_kms_and_an_unscoped_queue_policy():
    bad = module_from('''
resource "aws_sqs_queue" "events" {
  name = "events"
}
resource "aws_sqs_queue_policy" "events" {
  queue_url = aws_sqs_queue.events.id
  policy    = data.aws_iam_policy_document.events.json
}
data "aws_iam_policy_document" "events" {
  statement {
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.events.arn]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
  }
}
''')
    assert queue_violations(bad) == ["aws_sqs_queue.events is not encrypted with a KMS key",
                                     "aws_sqs_queue.events has no redrive_policy to a dead-letter queue"]
    assert queue_policy_violations(bad) == [
        "data.aws_iam_policy_document.events statement (no sid) lacks aws:SourceArn and aws:SourceAccount conditions"]


IAM_SNIPPET = '''
locals {
  lake_objects = "${var.lake_bucket_arn}/${var.lake_prefix}/*"
}
resource "aws_iam_role" "emr_job" {
  name               = "emr"
  assume_role_policy = jsonencode({ Statement = [] })
}
resource "aws_iam_role_policy" "emr_job" {
  role   = aws_iam_role.emr_job.id
  policy = data.aws_iam_policy_document.emr_job.json
}
data "aws_iam_policy_document" "emr_job" {
  statement {
    sid       = "LakeIsFine"
    actions   = ["s3:PutObject"]
    resources = [local.lake_objects]
  }
  statement {
    sid       = "WholeBucket"
    actions   = ["s3:PutObject", "s3:GetObject"]
    resources = ["${var.lake_bucket_arn}/*"]
  }
  statement {
    sid       = "EverythingInS3"
    actions   = ["s3:*"]
    resources = [var.landing_bucket_arn]
  }
  statement {
    sid       = "StarResource"
    actions   = ["logs:PutLogEvents"]
    resources = ["*"]
  }
}
'''


def test_iam_rules_flag_wildcard_actions_star_resources_and_unreadable_policies():
    bad = module_from(IAM_SNIPPET)
    assert wildcard_action_violations(bad) == [
        "data.aws_iam_policy_document.emr_job statement EverythingInS3 allows s3:*"]
    assert wildcard_resource_violations(bad) == [
        'data.aws_iam_policy_document.emr_job statement StarResource in snippet applies to "*" or NotResource']
    assert unreadable_policy_violations(bad) == [
        "aws_iam_role.emr_job.assume_role_policy is not a data.aws_iam_policy_document in this module"]


def test_emr_write_rule_flags_writes_to_the_whole_bucket_and_s3_star():
    assert writes_outside_lake_violations(module_from(IAM_SNIPPET), "emr_job") == [
        "aws_iam_role.emr_job: data.aws_iam_policy_document.emr_job statement WholeBucket allows s3:PutObject on "
        "['${var.lake_bucket_arn}/*'], outside ${var.lake_bucket_arn}/${var.lake_prefix}/*",
        "aws_iam_role.emr_job: data.aws_iam_policy_document.emr_job statement EverythingInS3 allows s3:* on "
        "['${var.landing_bucket_arn}'], outside ${var.lake_bucket_arn}/${var.lake_prefix}/*",
    ]


def test_emr_and_dynamodb_rules_flag_an_uncapped_application_and_an_unprotected_table():
    bad = module_from('''
resource "aws_emrserverless_application" "spark" {
  name          = "spark"
  release_label = "emr-7.5.0"
  type          = "spark"
  auto_stop_configuration {
    enabled = false
  }
}
resource "aws_dynamodb_table" "state" {
  name     = "state"
  hash_key = "pk"
  point_in_time_recovery {
    enabled = false
  }
}
''')
    assert emr_application_violations(bad) == [
        "aws_emrserverless_application.spark has no maximum_capacity with cpu, memory and disk (the cost guardrail)",
        "aws_emrserverless_application.spark does not auto-stop after an idle timeout",
        "aws_emrserverless_application.spark does not auto-start",
    ]
    assert dynamodb_violations(bad) == ["aws_dynamodb_table.state has no point-in-time recovery",
                                        "aws_dynamodb_table.state is not encrypted with the customer managed key",
                                        "aws_dynamodb_table.state has no deletion protection"]


def test_style_rules_flag_undescribed_and_unused_variables_and_reasonless_skips():
    bad = module_from('variable "unused" {\n  type = string\n}\noutput "x" {\n  value = 1\n}\n')
    assert description_violations(bad) == ["variable unused in snippet has no description",
                                            "output x in snippet has no description"]
    assert unused_variable_violations(bad) == ["variable unused in snippet is never used"]
    assert skip_without_reason_violations("x.tf", "  #checkov:skip=CKV_AWS_18\n  #checkov:skip=CKV_AWS_21:ok\n") == [
        "x.tf: checkov skip CKV_AWS_18 has no reason", "x.tf: checkov skip CKV_AWS_21 has no reason"]


# -- the CLIs ------------------------------------------------------------------------------------------------------

def terraform() -> str:
    binary = shutil.which("terraform")
    assert binary, "terraform is not on PATH: install it (only `terraform fmt` is run, no providers are needed)"
    return binary


def test_terraform_is_formatted():
    result = subprocess.run([terraform(), "fmt", "-check", "-recursive", "deploy/terraform"], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"run `terraform fmt -recursive deploy/terraform`; unformatted:\n{result.stdout}"


def test_terraform_fmt_check_flags_an_unformatted_file(tmp_path):
    (tmp_path / "bad.tf").write_text('variable "x" {\ntype=string\n}\n')
    result = subprocess.run([terraform(), "fmt", "-check", "-recursive", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "bad.tf" in result.stdout


def checkov_problems(report: dict, modules: list[str]) -> list[str]:
    """What is wrong with a checkov JSON report: failures, a scan too small to mean anything, modules it did
    not reach, skips without a reason."""
    results, summary = report["results"], report["summary"]
    problems = [f"{c['check_id']} failed on {c['resource']} ({c['file_path']}): {c['check_name']}"
                for c in results.get("failed_checks", [])]
    if summary["passed"] < 150:
        problems.append(f"only {summary['passed']} checks passed: checkov did not scan the modules")
    scanned = {c["resource"].split(".")[1] for c in results.get("passed_checks", [])
               if c["resource"].startswith("module.")}
    problems += [f"no check ran on module.{m}" for m in modules if m not in scanned]
    problems += [f"{c['check_id']} skipped on {c['resource']} without a reason"
                 for c in results.get("skipped_checks", []) if not c["check_result"].get("suppress_comment")]
    return problems


@pytest.fixture(scope="module")
def checkov_report() -> dict:
    assert CHECKOV.exists(), f"{CHECKOV.relative_to(PROJECT_ROOT)} is missing: run `make install` (creates .venv-tools)"
    # --skip-download: no calls to Prisma Cloud for guidelines (offline, and nothing it returns is used).
    result = subprocess.run([str(CHECKOV), "-d", "deploy/terraform", "--framework", "terraform", "-o", "json",
                             "--skip-download"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert result.stdout.strip(), f"checkov printed no report (exit {result.returncode}):\n{result.stderr[-2000:]}"
    return json.loads(result.stdout)


def test_checkov_passes_with_reasoned_skips_only(checkov_report):
    # checkov has no check for aws_budgets_budget, the budget module's only resource.
    modules = sorted(p.name for p in (TERRAFORM / "modules").iterdir() if p.is_dir() and p.name != "budget")
    assert checkov_problems(checkov_report, modules) == []


def test_checkov_problems_flag_a_failing_or_trivial_report():
    report = {"summary": {"passed": 3, "failed": 1}, "results": {
        "failed_checks": [{"check_id": "CKV_AWS_19", "resource": "module.storage.aws_s3_bucket.x",
                           "file_path": "/modules/storage/main.tf", "check_name": "encrypted at rest"}],
        "passed_checks": [{"resource": "module.storage.aws_s3_bucket.x"}],
        "skipped_checks": [{"check_id": "CKV_AWS_18", "resource": "module.storage.aws_s3_bucket.x",
                            "check_result": {"result": "SKIPPED", "suppress_comment": ""}}],
    }}
    assert checkov_problems(report, ["storage", "iam"]) == [
        "CKV_AWS_19 failed on module.storage.aws_s3_bucket.x (/modules/storage/main.tf): encrypted at rest",
        "only 3 checks passed: checkov did not scan the modules",
        "no check ran on module.iam",
        "CKV_AWS_18 skipped on module.storage.aws_s3_bucket.x without a reason",
    ]
