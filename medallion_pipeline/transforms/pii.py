"""PII protection with Spark built-ins: masking and keyed pseudonyms (no Python UDFs).

Every pattern is linear in the length of the text it scans (Java's regex engine backtracks): a match may
only start where a token starts (a lookbehind) and the unbounded part is possessive, so a 5 MB line of
letters, digits or ``a@a@…`` costs one pass instead of one pass per character.
"""

from __future__ import annotations

import hashlib

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

# The local part is possessive and must start a token: an attempt inside a run of local-part characters
# would reach the same '@' as the one at the run's start, so the matches are those of the plain pattern.
EMAIL_PATTERN = r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]++@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
IPV4_PATTERN = r"\b(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\b"
IPV6_PATTERN = r"\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b|\b(?:[0-9A-Fa-f]{1,4}:){1,7}:(?:[0-9A-Fa-f]{1,4}:?){0,6}[0-9A-Fa-f]{0,4}\b"

_BLOCK = 64  # SHA-256 block size in bytes
_INNER_PAD, _OUTER_PAD = "_hmac_inner_pad", "_hmac_outer_pad"


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """The inner and outer pads of HMAC-SHA256 (RFC 2104) for ``key``."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def pseudonymize(df: DataFrame, columns: list[str], key: bytes) -> DataFrame:
    """Replaces each string column by its HMAC-SHA256 hex (NULL stays NULL): a pseudonym that cannot be
    reversed by dictionary without the key, computed with ``sha2`` in the JVM.

    The pads travel as the data of a one-row broadcast DataFrame, not as literals: a literal would print the
    key (XOR a constant) in every plan — ``explain()``, the Spark UI's SQL tab, event logs, EMR's Spark history.
    """
    inner, outer = hmac_pads(key)
    pads = df.sparkSession.createDataFrame([(bytearray(inner), bytearray(outer))],
                                           f"{_INNER_PAD} binary, {_OUTER_PAD} binary")
    keyed = df.crossJoin(F.broadcast(pads))
    for name in columns:
        value = F.col(name)
        inner_hash = F.unhex(F.sha2(F.concat(F.col(_INNER_PAD), value.cast("binary")), 256))
        keyed = keyed.withColumn(name, F.when(value.isNotNull(), F.sha2(F.concat(F.col(_OUTER_PAD), inner_hash), 256)))
    return keyed.drop(_INNER_PAD, _OUTER_PAD)


def mask_email(value: Column) -> Column:
    """``jane.doe@example.com`` -> ``***@example.com``; anything not shaped like an email -> ``***``."""
    return F.when(value.isNull(), None).otherwise(
        F.when(value.rlike(f"^{EMAIL_PATTERN}$"), F.regexp_replace(value, r"^[^@]*", "***")).otherwise(F.lit("***"))
    )


AWS_ACCESS_KEY_PATTERN = r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
BEARER_TOKEN_PATTERN = r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]{16,}=*"
# A card-like number on its own (not inside an id, a UUID or a longer token), with an issuer prefix
# (Amex 34/37, Visa 4, Mastercard 51-55, Discover 6011/65): epoch millis and numeric ids do not qualify.
CARD_CANDIDATE_PATTERN = r"(?<![\w-])(?:3[47]|4|5[1-5]|6011|65)\d(?:[ -]?\d){11,17}(?![\w-])"


def _sql(text: str) -> str:
    """A Spark SQL string literal holding ``text`` exactly (SQL literals unescape backslashes: each is doubled)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _quoted(column: str) -> str:
    return "`" + column.replace("`", "``") + "`"


# Rules below are Spark SQL text, parsed by the JVM in one call per expression: built from Column objects
# they cost ~100 Py4J round trips each, ~0.1 s per column on every audit and masking pass.
# What a text must contain for each pattern to match at all: a check far cheaper than the regex, so most
# values (no '@', no ':', few digits) skip most patterns. The patterns alone decide what matches.
_MAY_HOLD = {
    "email": "instr({v}, '@') > 0",
    "ipv4": "instr({v}, '.') > 0",
    "ipv6": "instr({v}, ':') > 0",
    # an issuer prefix, then at least 12 more digits (``translate``: cheaper than a regex)
    "card": "length({v}) - length(translate({v}, '0123456789', '')) >= 13",
    "aws_key": "(instr({v}, 'AKIA') > 0 OR instr({v}, 'ASIA') > 0)",
    "bearer": "instr(lower({v}), 'bearer') > 0",
}
_MASKS = (
    ("email", EMAIL_PATTERN, "<email>"),
    ("ipv4", IPV4_PATTERN, "<ip>"),
    ("ipv6", IPV6_PATTERN, "<ip>"),
    ("card", CARD_CANDIDATE_PATTERN, "<card>"),
    ("aws_key", AWS_ACCESS_KEY_PATTERN, "<aws-key>"),
    ("bearer", BEARER_TOKEN_PATTERN, "<bearer-token>"),
)


def _matches(v: str, kind: str, pattern: str) -> str:
    return f"coalesce({_MAY_HOLD[kind].format(v=v)} AND {v} RLIKE {_sql(pattern)}, false)"


def mask_free_text(value: Column) -> Column:
    """Replace every kind of PII the detectors know inside free text with a placeholder: emails, IPv4/IPv6
    addresses, card-shaped numbers (Luhn-valid or not: masking errs on the safe side), AWS access keys and
    bearer tokens. (``mask_free_text_columns`` does the same to whole columns of a DataFrame, faster.)"""
    masked = value
    for _, pattern, placeholder in _MASKS:
        masked = F.regexp_replace(masked, pattern, placeholder)
    return masked


def mask_free_text_columns(df: DataFrame, columns: list[str]) -> DataFrame:
    """``mask_free_text`` applied to ``columns``, each pattern only to values that could hold its kind.

    One projection per pattern: ``CASE WHEN test(c) THEN replace(c) ELSE c END`` over the previous
    projection's column, which Spark keeps as separate steps of one generated stage (written as one
    expression, each step would copy the chain before it into its three places).
    """
    for kind, pattern, placeholder in _MASKS:
        df = df.withColumns({
            c: F.expr(f"CASE WHEN {_MAY_HOLD[kind].format(v=_quoted(c))} "
                      f"THEN regexp_replace({_quoted(c)}, {_sql(pattern)}, {_sql(placeholder)}) ELSE {_quoted(c)} END")
            for c in columns
        })
    return df


def _luhn_valid(v: str) -> str:
    """True when the first card-shaped number in ``v`` has 13-19 digits and passes the Luhn checksum."""
    digits = f"regexp_replace(regexp_extract({v}, {_sql(CARD_CANDIDATE_PATTERN)}, 0), '[^0-9]', '')"
    doubled = (f"transform(reverse(split({digits}, '')), (d, i) -> CASE WHEN i % 2 = 1 THEN CASE WHEN CAST(d AS INT) * 2"
               " > 9 THEN CAST(d AS INT) * 2 - 9 ELSE CAST(d AS INT) * 2 END ELSE CAST(d AS INT) END)")
    return f"coalesce(length({digits}) BETWEEN 13 AND 19 AND aggregate({doubled}, 0, (acc, x) -> acc + x) % 10 = 0, false)"


def pii_detector_sql(column: str) -> dict[str, str]:
    """One boolean Spark SQL expression per kind of PII found in the string column named ``column``."""
    v = _quoted(column)
    return {
        "email": _matches(v, "email", EMAIL_PATTERN),
        "ip_address": f"({_matches(v, 'ipv4', IPV4_PATTERN)} OR {_matches(v, 'ipv6', IPV6_PATTERN)})",
        "card_number": f"coalesce({_MAY_HOLD['card'].format(v=v)} AND {_luhn_valid(v)}, false)",
        "aws_access_key": _matches(v, "aws_key", AWS_ACCESS_KEY_PATTERN),
        "bearer_token": _matches(v, "bearer", BEARER_TOKEN_PATTERN),
    }


def pii_detectors(column: str) -> dict[str, Column]:
    """``pii_detector_sql`` as Columns."""
    return {kind: F.expr(sql) for kind, sql in pii_detector_sql(column).items()}
