"""Unit tests for PII masking and keyed pseudonyms (transforms/pii.py)."""

from __future__ import annotations

import hashlib
import hmac

from pyspark.sql import functions as F

from medallion_pipeline.transforms.pii import hmac_sha256_hex, mask_email, mask_free_text

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


def test_hmac_sha256_hex_matches_python_hmac(spark):
    df = spark.createDataFrame([(i, v) for i, v in enumerate(VALUES)], "i int, v string")
    rows = df.select("i", *[hmac_sha256_hex(F.col("v"), key).alias(name) for name, key in KEYS.items()]).collect()

    assert len(rows) == len(VALUES)
    for row in rows:
        value = VALUES[row["i"]]
        for name, key in KEYS.items():
            assert row[name] == _expected(key, value), (name, value)


def test_hmac_sha256_hex_null_stays_null_and_keys_differ(spark):
    df = spark.createDataFrame([("203.0.113.7",), (None,)], "v string")
    rows = df.select(
        hmac_sha256_hex(F.col("v"), b"key-one").alias("one"),
        hmac_sha256_hex(F.col("v"), b"key-two").alias("two"),
    ).collect()

    assert (rows[1]["one"], rows[1]["two"]) == (None, None)
    assert rows[0]["one"] != rows[0]["two"]
    assert len(rows[0]["one"]) == 64 and int(rows[0]["one"], 16) >= 0
    # A pseudonym is not a plain hash of the value.
    assert rows[0]["one"] != hashlib.sha256(b"203.0.113.7").hexdigest()


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
