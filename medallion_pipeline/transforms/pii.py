"""PII protection with Spark built-ins: masking and keyed pseudonyms (no Python UDFs)."""

from __future__ import annotations

import hashlib

from pyspark.sql import Column
from pyspark.sql import functions as F

EMAIL_PATTERN = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
IPV4_PATTERN = r"\b(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\b"
IPV6_PATTERN = r"\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b|\b(?:[0-9A-Fa-f]{1,4}:){1,7}:(?:[0-9A-Fa-f]{1,4}:?){0,6}[0-9A-Fa-f]{0,4}\b"

_BLOCK = 64  # SHA-256 block size in bytes


def hmac_sha256_hex(value: Column, key: bytes) -> Column:
    """HMAC-SHA256 (RFC 2104) of a string column, as hex: a pseudonym that cannot be reversed by dictionary
    without the key. Composed from ``sha2`` over binary so it runs in the JVM, not in Python."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner_pad = bytes(b ^ 0x36 for b in key)
    outer_pad = bytes(b ^ 0x5C for b in key)
    inner = F.unhex(F.sha2(F.concat(F.lit(inner_pad), value.cast("binary")), 256))
    return F.when(value.isNotNull(), F.sha2(F.concat(F.lit(outer_pad), inner), 256))


def mask_email(value: Column) -> Column:
    """``jane.doe@example.com`` -> ``***@example.com``; anything not shaped like an email -> ``***``."""
    return F.when(value.isNull(), None).otherwise(
        F.when(value.rlike(f"^{EMAIL_PATTERN}$"), F.regexp_replace(value, r"^[^@]*", "***")).otherwise(F.lit("***"))
    )


def mask_free_text(value: Column) -> Column:
    """Replace emails and IPv4/IPv6 addresses inside free text with placeholders."""
    masked = F.regexp_replace(value, EMAIL_PATTERN, "<email>")
    masked = F.regexp_replace(masked, IPV4_PATTERN, "<ip>")
    return F.regexp_replace(masked, IPV6_PATTERN, "<ip>")


AWS_ACCESS_KEY_PATTERN = r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
BEARER_TOKEN_PATTERN = r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]{16,}=*"
# A card-like number on its own (not inside an id, a UUID or a longer token), with an issuer prefix
# (Amex 34/37, Visa 4, Mastercard 51-55, Discover 6011/65): epoch millis and numeric ids do not qualify.
CARD_CANDIDATE_PATTERN = r"(?<![\w-])(?:3[47]|4|5[1-5]|6011|65)\d(?:[ -]?\d){11,17}(?![\w-])"


def luhn_valid(value: Column) -> Column:
    """True when the first 13-19 digit run in ``value`` passes the Luhn checksum (a plausible card number)."""
    digits = F.regexp_replace(F.regexp_extract(value, CARD_CANDIDATE_PATTERN, 0), r"[^0-9]", "")
    reversed_digits = F.reverse(F.split(digits, ""))
    doubled = F.transform(
        reversed_digits,
        lambda d, i: F.when(i % 2 == 1, F.when(d.cast("int") * 2 > 9, d.cast("int") * 2 - 9).otherwise(d.cast("int") * 2))
        .otherwise(d.cast("int")),
    )
    checksum = F.aggregate(doubled, F.lit(0), lambda acc, x: acc + x)
    return F.coalesce(F.length(digits).between(13, 19) & (checksum % 10 == 0), F.lit(False))


def pii_detectors(value: Column) -> dict[str, Column]:
    """One boolean per kind of PII found in a string column."""
    return {
        "email": F.coalesce(value.rlike(EMAIL_PATTERN), F.lit(False)),
        "ip_address": F.coalesce(value.rlike(IPV4_PATTERN) | value.rlike(IPV6_PATTERN), F.lit(False)),
        "card_number": luhn_valid(value),
        "aws_access_key": F.coalesce(value.rlike(AWS_ACCESS_KEY_PATTERN), F.lit(False)),
        "bearer_token": F.coalesce(value.rlike(BEARER_TOKEN_PATTERN), F.lit(False)),
    }
