"""Unit tests for PII masking and keyed pseudonyms (transforms/pii.py)."""

from __future__ import annotations

import hashlib
import hmac
import re

from pyspark.sql import functions as F

from medallion_pipeline.transforms.pii import (
    EMAIL_PATTERN,
    hmac_pads,
    mask_email,
    mask_free_text,
    mask_free_text_columns,
    pii_detectors,
    pseudonymize,
)
from medallion_pipeline_tests.conftest import forbidden_strings, hostile_long_lines

VALUES = ["203.0.113.7", "", "2001:db8::1", "ünïcødé ✓ 日本", "x" * 200, None]
KEYS = {
    "short": b"k",
    "empty": b"",
    "block": b"b" * 64,  # exactly one SHA-256 block: used as is
    "long": b"L" * 65,  # longer than a block: hashed first
    "longer": "schlüssel-".encode() * 20,
}


def _expected(key: bytes, value: str | None) -> str | None:
    return None if value is None else hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def test_pseudonymize_matches_python_hmac(spark):
    df = spark.createDataFrame([(i, v) for i, v in enumerate(VALUES)], "i int, v string")
    rows = {
        name: {r["i"]: r["v"] for r in pseudonymize(df, ["v"], key).collect()} for name, key in KEYS.items()
    }

    for name, key in KEYS.items():
        assert rows[name] == {i: _expected(key, v) for i, v in enumerate(VALUES)}, name


def test_pseudonymize_null_stays_null_keys_differ_and_columns_keep_their_order(spark):
    df = spark.createDataFrame([("203.0.113.7", "a"), (None, "b")], "v string, w string")
    one = pseudonymize(df, ["v"], b"key-one")
    two = pseudonymize(df, ["v"], b"key-two").collect()

    assert one.columns == ["v", "w"]
    one = one.collect()
    assert (one[1]["v"], two[1]["v"]) == (None, None)
    assert one[0]["v"] != two[0]["v"]
    assert re.fullmatch(r"[0-9a-f]{64}", one[0]["v"])
    assert [r["w"] for r in one] == ["a", "b"]
    # A pseudonym is not a plain hash of the value.
    assert one[0]["v"] != hashlib.sha256(b"203.0.113.7").hexdigest()


def test_pseudonymize_keeps_the_key_out_of_the_plan(spark):
    key = b"plan-secret-key"
    inner, outer = hmac_pads(key)
    df = spark.createDataFrame([("203.0.113.7",)], "v string")
    plan = pseudonymize(df, ["v"], key)._jdf.queryExecution().toString()

    assert forbidden_strings(key, inner, outer)
    assert not [s for s in forbidden_strings(key, inner, outer) if s in plan.lower()]


def test_mask_email(spark):
    cases = {
        "jane.doe@example.com": "***@example.com",
        "J.Doe+tag@Mail.Example.CO.UK": "***@Mail.Example.CO.UK",
        "not-an-email": "***",
        "jane@localhost": "***",
        "a@b@example.com": "***",
        "": "***",
        None: None,
    }
    df = spark.createDataFrame([(v,) for v in cases], "v string")
    got = {r["v"]: r["m"] for r in df.select("v", mask_email(F.col("v")).alias("m")).collect()}
    assert got == cases


def test_mask_free_text(spark):
    cases = {
        "login by jane.doe@example.com ok": "login by <email> ok",
        "from 203.0.113.7 via 10.0.0.1": "from <ip> via <ip>",
        "from 2001:db8::1 ok": "from <ip> ok",
        "peer 2001:0db8:85a3:0000:0000:8a2e:0370:7334 closed": "peer <ip> closed",
        "link fe80::1ff:fe23:4567:890a up": "link <ip> up",
        "user a@b.io from 192.168.1.20": "user <email> from <ip>",
        # Must stay as they are: versions, clock times, numbers that are not addresses.
        "version 1.2.3 at 12:30:45": "version 1.2.3 at 12:30:45",
        "256.1.1.1 is not an address": "256.1.1.1 is not an address",
        "took 10.5 ms, 3 retries": "took 10.5 ms, 3 retries",
        "": "",
        None: None,
    }
    df = spark.createDataFrame([(v,) for v in cases], "v string")
    got = {r["v"]: r["m"] for r in df.select("v", mask_free_text(F.col("v")).alias("m")).collect()}
    assert got == cases


def test_mask_free_text_masks_every_kind_the_detectors_know(spark):
    cases = {
        "paid with 4111 1111 1111 1111 today": "paid with <card> today",
        "key AKIAIOSFODNN7EXAMPLE leaked": "key <aws-key> leaked",
        "Authorization: Bearer abcdefghijklmnop1234.xyz=": "Authorization: <bearer-token>",
        "order 1704067200000 shipped": "order 1704067200000 shipped",  # epoch millis: not a card
    }
    df = spark.createDataFrame([(v,) for v in cases], "v string")
    got = {r["v"]: r["m"] for r in df.select("v", mask_free_text(F.col("v")).alias("m")).collect()}
    assert got == cases


def test_column_masking_skips_only_patterns_a_value_cannot_match(spark):
    """``mask_free_text_columns`` runs a pattern only on values holding its trigger ('@', '.', ':', 13 digits,
    AKIA/ASIA, "bearer"); what it produces is exactly ``mask_free_text``'s, kind by kind and mixed."""
    texts = [
        "login by jane.doe@example.com ok", "from 203.0.113.7 via 10.0.0.1", "from 2001:db8::1 ok",
        "paid with 4111 1111 1111 1111 today", "key AKIAIOSFODNN7EXAMPLE leaked", "token ASIAIOSFODNN7EXAMPLE",
        "Authorization: BEARER abcdefghijklmnop1234.xyz=", "a@b.io 10.0.0.1 fe80::1 4111111111111111",
        "version 1.2.3 at 12:30:45", "order 1704067200000 shipped", "no trigger at all", "", None,
        "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.0.0 Safari/537.36", "x" * 300 + "@example.com",
    ]
    df = spark.createDataFrame([(t, t) for t in texts], "a string, b string")
    plain = [tuple(r) for r in df.select(mask_free_text(F.col("a")), mask_free_text(F.col("b"))).collect()]
    by_column = [tuple(r) for r in mask_free_text_columns(df, ["a", "b"]).collect()]
    assert by_column == plain
    masked = dict(zip(texts, (a for a, _ in by_column)))
    assert masked["a@b.io 10.0.0.1 fe80::1 4111111111111111"] == "<email> <ip> <ip> <card>"
    assert masked["Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.0.0 Safari/537.36"] == (
        "Mozilla/5.0 (X11; Linux x86_64) Chrome/<ip> Safari/537.36")  # an address-shaped version is masked
    assert masked["no trigger at all"] == "no trigger at all" and masked[None] is None


# The email pattern before it was made linear (quadratic on long runs of local-part characters).
LEGACY_EMAIL_PATTERN = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
ORDINARY_TEXT = [
    "login by jane.doe@example.com ok", "mail a@b.io, b.c+tag@sub.example.co.uk; x@y", "user@localhost no tld",
    "two: a@example.com b@example.org", "weird a@b@example.com", "trailing dot jane@example.com.",
    "local part with dots ...x@example.com", "%percent+plus@example.com", "no email here at all",
    "@example.com alone", "a@-bad-.example.com", "(jane@example.com)", "<jane@example.com>",
    "jane@example.c", "jane@123.45.67.89", "",
]


DETECTED = {  # value -> the kinds the detectors must report, and no other
    "mail jane.doe@example.com now": {"email"},
    "from 203.0.113.7": {"ip_address"},
    "fe80::1ff:fe23:4567:890a": {"ip_address"},
    "card 4111 1111 1111 1111": {"card_number"},
    "378282246310005": {"card_number"},
    "4111111111111112": set(),  # card-shaped, fails the Luhn checksum
    "e3a1b2c4-4111-1111-1111-111111111111": set(),  # inside a UUID
    "1704067200123": set(),  # epoch millis
    "key AKIAABCDEFGHIJKLMNOP": {"aws_access_key"},
    "Authorization: Bearer abcdefghijklmnopqrstuvwx": {"bearer_token"},
    "bearer short": set(),
    "it's 'quoted', a back\\slash and a@b": set(),  # quotes and backslashes reach the SQL rules intact
    "": set(),
    None: set(),
}


def test_detectors_find_each_kind_and_nothing_else(spark):
    df = spark.createDataFrame([(v,) for v in DETECTED], "v string")
    detectors = pii_detectors("v")
    rows = df.select("v", *[hit.alias(kind) for kind, hit in detectors.items()]).collect()
    assert {r["v"]: {kind for kind in detectors if r[kind]} for r in rows} == DETECTED
    assert all(r[kind] is False for r in rows for kind in detectors if kind not in DETECTED[r["v"]])  # never NULL


def test_linear_email_pattern_finds_what_the_plain_one_found(spark):
    df = spark.createDataFrame([(v,) for v in ORDINARY_TEXT], "v string")
    rows = df.select(
        "v",
        F.regexp_replace("v", EMAIL_PATTERN, "<email>").alias("new"),
        F.regexp_replace("v", LEGACY_EMAIL_PATTERN, "<email>").alias("legacy"),
    ).collect()
    assert [r["new"] for r in rows] == [r["legacy"] for r in rows]
    assert sum(r["new"] != r["v"] for r in rows) >= 8  # the corpus exercises the pattern


LONG_LINES = hostile_long_lines()


def test_masking_and_detection_are_linear_on_multi_megabyte_lines(spark):
    """Each line is scanned by every pattern; with a backtracking pattern one line alone takes hours. The
    tail proves the scan reaches the end (an email and an IP after 2 MB are still masked)."""
    tail = " jane@example.com from 203.0.113.7"
    df = spark.createDataFrame([(name, line + tail) for name, line in LONG_LINES.items()], "name string, v string")
    detectors = pii_detectors("v")
    rows = df.select(
        "name", F.substring(F.reverse(mask_free_text(F.col("v"))), 1, 40).alias("masked_tail"),
        detectors["email"].alias("email"), detectors["ip_address"].alias("ip"),
        detectors["card_number"].alias("card"),
    ).collect()

    assert {r["name"]: r["masked_tail"][::-1].split(" ", 1)[-1] for r in rows} == {
        name: "<email> from <ip>" for name in LONG_LINES
    }
    assert all(r["email"] and r["ip"] and not r["card"] for r in rows)
