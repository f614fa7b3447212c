"""Deterministic generator of realistic, deliberately dirty synthetic JSON application logs.

Layout: ``<landing_root>/<source>/dt=YYYY-MM-DD/part-NNNNN-<8 hex>.<json|jsonl|ndjson>[.gz]``.
Everything derives from ``seed``: re-running with the same arguments rewrites byte-identical files.
"""
from __future__ import annotations

import bisect
import gzip
import io
import json
import os
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

DAY_MS = 86_400_000
USER_SCOPED = frozenset({"login", "view_item", "add_to_cart", "purchase"})
HTTP_FIELDS = ("method", "path", "status", "latency_ms", "bytes")
# One encoder instance: json.dumps(separators=...) would build a new encoder per call.
_ENC = json.JSONEncoder(separators=(",", ":"))
_UUID_MASK = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID_V4 = (0x4000 << 64) | (0x8000 << 48)


def _table(weights: dict) -> tuple:
    """Expand {value: integer weight} into a flat tuple so a weighted pick is one random()."""
    return tuple(v for v, w in weights.items() for _ in range(w))


def _pick(rng: random.Random, table: tuple):
    return table[int(rng.random() * len(table))]


_HOURS = _table(dict(enumerate((2, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 8, 9, 8, 8, 8, 8, 9, 10, 10, 9, 7, 5, 3))))
_TS_KINDS = _table({"Z": 36, "+00:00": 36, "offset": 8, "epoch": 20})
_OFFSETS_MIN = (120, 60, -300, 330, 540, -480, -180)
_STATUS = _table({200: 845, 201: 15, 204: 15, 301: 15, 304: 55, 400: 8, 401: 8, 403: 4, 404: 15,
                  429: 5, 500: 6, 502: 3, 503: 4, 504: 2})
_GET = ("GET",)
_PATHS = _table({
    ("/api/items/{item}", "catalog", _GET): 30,
    ("/api/items", "catalog", _GET): 10,
    ("/api/users/{uid}/orders", "checkout", _GET): 8,
    ("/api/orders/{order}", "checkout", _table({"GET": 6, "PUT": 2, "DELETE": 1})): 6,
    ("/api/cart", "cart", _table({"GET": 4, "POST": 4, "PUT": 2, "DELETE": 1})): 12,
    ("/api/auth/session", "auth", _table({"GET": 3, "POST": 2, "DELETE": 1})): 6,
    ("/health", "gateway", _GET): 8,
})
_ACTION_SERVICE = {"login": "auth", "logout": "auth", "view_item": "catalog", "add_to_cart": "cart",
                   "purchase": "checkout"}
_ACTION_MESSAGES = {"login": "user logged in", "logout": "user logged out", "view_item": "viewed item {item}",
                    "add_to_cart": "added item {item} to cart", "purchase": "order {order} placed"}
_SERVICES = ("gateway", "catalog", "cart", "checkout", "auth")
_SYSTEM = _table({("INFO", "cache refresh done"): 30, ("INFO", "config reloaded"): 15,
                  ("DEBUG", "gc pause {n}ms"): 20, ("WARN", "connection pool at {n}% capacity"): 12,
                  ("ERROR", "upstream timeout after {n}ms"): 7, ("FATAL", "out of memory, worker {n} exiting"): 1})
_PII = ("password reset requested for {email} from {ip}", "login failed for {email}", "{msg} client={ip}",
        "{msg} (contact {email})", "rate limit exceeded for {ip}")
_WRONG_TYPES = (("status", "abc"), ("latency_ms", "fast"), ("bytes", "n/a"))
_AGENTS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0", "Mozilla/5.0 (Macintosh) Safari/17.4",
           "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4) Mobile/15E148", "Mozilla/5.0 (X11; Linux x86_64) Firefox/125.0",
           "okhttp/4.12.0", "python-requests/2.31.0")
_REGIONS = ("eu-west-1", "us-east-1", "us-west-2", "ap-southeast-1")
_FIRST = ("jane", "john", "maria", "li", "ahmed", "olga", "sam", "priya", "lucas", "emma", "kenji", "fatima")
_LAST = ("doe", "smith", "garcia", "chen", "khan", "ivanova", "lee", "patel", "silva", "muller", "sato", "ali")
_DOMAINS = ("example.com", "example.org", "example.net")
_EXTS = _table({".jsonl": 5, ".json": 3, ".ndjson": 2})
_BARE_TEXT = (b"Traceback (most recent call last):", b"-- MARK --", b"WARN disk usage 91% on /var/log",
              b"java.lang.NullPointerException at com.shop.Cart.add(Cart.java:42)")


@dataclass(frozen=True)
class Dirt:
    """Data-quality problems injected into the logs (rates are fractions; days are 1-based).

    malformed_rate       lines that are no JSON object: torn object, bare text, '{"a":', array, b"\\xff\\xfe.."
    duplicate_rate       events re-emitted verbatim in another file of that day (same source if it has 2+ files)
    null_user_rate       login/view_item/add_to_cart/purchase events with "user_id": null
    wrong_type_rate      http_request events whose status, latency_ms or bytes is a string
    missing_field_rate   events lacking event_id, lacking event_ts, or with event_ts "not-a-date"
    pii_in_message_rate  events whose message carries an email address and/or an IPv4 address
    new_field_from_day   first day whose events carry a top-level "region"; None: never
    empty_files          zero-byte files per day, in addition to files_per_day
    bad_day              day with null_user_rate 0.2 and duplicate_rate 0.1
    """

    malformed_rate: float = 0.002
    duplicate_rate: float = 0.01
    null_user_rate: float = 0.01
    wrong_type_rate: float = 0.001
    missing_field_rate: float = 0.001
    pii_in_message_rate: float = 0.02
    new_field_from_day: int | None = 2
    empty_files: int = 1
    bad_day: int | None = None


@dataclass(frozen=True)
class GenerateSummary:
    """What generate() wrote: dt strings, files (incl. empty), distinct events, lines, bytes."""

    days: list[str]
    files: int
    events: int
    lines: int
    bytes: int


class _Day:
    """Generates the distinct events of one day from one Random."""

    def __init__(self, rng: random.Random, dt: date, users: list, dirt: Dirt, day_no: int):
        self.rng, self.dt, self.users = rng, dt.isoformat(), users
        self.midnight = datetime(dt.year, dt.month, dt.day)
        self.epoch_ms = int(self.midnight.replace(tzinfo=timezone.utc).timestamp()) * 1000
        self.null_rate = 0.2 if dirt.bad_day == day_no else dirt.null_user_rate
        self.pii_rate = dirt.pii_in_message_rate
        self.region = dirt.new_field_from_day is not None and day_no >= dirt.new_field_from_day

    def events(self, n: int) -> list[dict]:
        """Whole sessions until exactly n events exist (the last session is cut short)."""
        out: list[dict] = []
        while len(out) < n:
            out.extend(self._session()[: n - len(out)])
        return out

    def _uuid(self) -> str:
        h = "%032x" % (self.rng.getrandbits(128) & _UUID_MASK | _UUID_V4)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def _ts(self, t: int) -> str | int:
        kind = _pick(self.rng, _TS_KINDS)
        if kind == "epoch":
            return self.epoch_ms + t
        if kind == "offset":
            off = _pick(self.rng, _OFFSETS_MIN)
            local = self.midnight + timedelta(milliseconds=t + off * 60_000)
            sign, off = ("+", off) if off >= 0 else ("-", -off)
            return f"{local.isoformat(timespec='milliseconds')}{sign}{off // 60:02d}:{off % 60:02d}"
        s, ms = divmod(t, 1000)
        m, s = divmod(s, 60)
        h, m = divmod(m, 60)
        # Hand formatting: datetime.isoformat per event dominates the runtime otherwise.
        return f"{self.dt}T{h:02d}:{m:02d}:{s:02d}.{ms:03d}{kind}"

    def _session(self) -> list[dict]:
        r = self.rng
        t = _pick(r, _HOURS) * 3_600_000 + int(r.random() * 3_600_000)
        kind = r.random()
        if kind < 0.08:
            return [self._system(t)]
        user = self.users[int(r.random() ** 2 * len(self.users))] if kind >= 0.30 else None
        ctx = {"user": user, "sid": "s_%016x" % r.getrandbits(64), "ip": self._ip(), "ua": _pick(r, _AGENTS),
               "region": _pick(r, _REGIONS), "item": 100_000 + int(r.random() * 900_000)}
        if kind < 0.30:  # anonymous traffic: crawlers, health checks, logged-out browsing
            out = [self._http(t, ctx)]
            for _ in range(int(r.random() * 4)):
                t += 20 + int(r.random() * 2000)
                if t >= DAY_MS:
                    break
                out.append(self._http(t, ctx))
            return out
        if kind < 0.40:  # bounce
            return [self._http(t, ctx)]
        return self._funnel(t, ctx)

    def _funnel(self, t: int, ctx: dict) -> list[dict]:
        r = self.rng
        steps = ["login"]
        if r.random() < 0.6:
            steps += ["view_item"] * (1 + int(r.random() * 6))
            if r.random() < 0.3:
                steps += ["add_to_cart"] * (1 + (r.random() < 0.3))
                if r.random() < 0.35:
                    steps.append("purchase")
        if r.random() < 0.4:
            steps.append("logout")
        out = []
        for step in steps:
            out.append(self._action(t, step, ctx))
            for _ in range(_pick(r, (0, 1, 1, 2))):
                t += 50 + int(r.random() * 3000)
                if t >= DAY_MS:
                    return out
                out.append(self._http(t, ctx))
            t += 1000 + int(r.lognormvariate(9.6, 1.0))  # median ~15 s, tail of minutes
            if t >= DAY_MS:
                return out
        return out

    def _ip(self) -> str:
        r = self.rng
        k, x = r.random(), r.getrandbits(24)
        a, b, c = x >> 16, (x >> 8) & 255, 1 + (x & 255) % 254
        if k < 0.4:
            return f"10.{a}.{b}.{c}"
        return f"192.168.{b}.{c}" if k < 0.7 else f"203.0.113.{c}"

    def _base(self, t: int, etype: str, service: str, level: str, ctx: dict) -> dict:
        ev = {"event_id": self._uuid(), "event_ts": self._ts(t), "service": service, "level": level,
              "event_type": etype}
        if ctx["user"] is not None:
            uid = ctx["user"][0]
            if etype in USER_SCOPED and self.rng.random() < self.null_rate:
                uid = None
            ev["user_id"], ev["session_id"] = uid, ctx["sid"]
        return ev

    def _finish(self, ev: dict, ctx: dict, msg: str, email: str | None = None) -> dict:
        ev["client_ip"], ev["user_agent"] = ctx["ip"], ctx["ua"]
        if email:
            ev["email"] = email
        if self.rng.random() < self.pii_rate:
            pii_email = ctx["user"][1] if ctx["user"] else _pick(self.rng, self.users)[1]
            msg = _pick(self.rng, _PII).format(msg=msg, email=pii_email, ip=ctx["ip"])
        ev["message"] = msg
        if self.region:
            ev["region"] = ctx["region"]
        return ev

    def _action(self, t: int, step: str, ctx: dict) -> dict:
        r = self.rng
        ev = self._base(t, step, _ACTION_SERVICE[step], "INFO", ctx)
        if step == "view_item":
            ctx["item"] = 100_000 + int(r.random() * 900_000)
        msg = _ACTION_MESSAGES[step].format(item=ctx["item"], order=self._uuid() if step == "purchase" else "")
        email = ctx["user"][1] if step == "login" or (step == "purchase" and r.random() < 0.5) else None
        return self._finish(ev, ctx, msg, email)

    def _http(self, t: int, ctx: dict) -> dict:
        r = self.rng
        tpl, service, methods = _pick(r, _PATHS)
        method, status = _pick(r, methods), _pick(r, _STATUS)
        uid = (ctx["user"] or _pick(r, self.users))[0]
        item = 100_000 + int(r.random() * 900_000)
        path = tpl.format(item=item, uid=uid, order=self._uuid() if "{order}" in tpl else "")
        if tpl == "/api/items" or r.random() < 0.05:
            path += f"?page={2 + r.randrange(9)}"
        if status == 200 and method in ("POST", "DELETE"):
            status = 201 if method == "POST" else 204
        level = "ERROR" if status >= 500 else "WARN" if status >= 400 else "DEBUG" if tpl == "/health" else "INFO"
        ev = self._base(t, "http_request", "gateway" if r.random() < 0.3 else service, level, ctx)
        ev["method"], ev["path"], ev["status"] = method, path, status
        ev["latency_ms"] = round(r.lognormvariate(3.69 + (1.2 if status >= 500 else 0.0), 0.8), 1)
        ev["bytes"] = 0 if status in (204, 304) else int(r.lognormvariate(7.5, 1.0))
        return self._finish(ev, ctx, f"{method} {path} {status}")

    def _system(self, t: int) -> dict:
        r = self.rng
        level, msg = _pick(r, _SYSTEM)
        ev = {"event_id": self._uuid(), "event_ts": self._ts(t), "service": _pick(r, _SERVICES), "level": level,
              "event_type": "system", "message": msg.format(n=1 + r.randrange(99))}
        if self.region:
            ev["region"] = _pick(r, _REGIONS)
        return ev


def _users(seed: int, n: int) -> list[tuple[str, str]]:
    rng = random.Random(f"{seed}:users")
    return [(f"u_{i:06d}", f"{_pick(rng, _FIRST)}.{_pick(rng, _LAST)}{rng.randrange(100)}@{_pick(rng, _DOMAINS)}")
            for i in range(n)]


def _spoil(rng: random.Random, events: list[dict], dirt: Dirt) -> None:
    for ev in events:
        if ev["event_type"] == "http_request" and rng.random() < dirt.wrong_type_rate:
            field, bad = _pick(rng, _WRONG_TYPES)
            ev[field] = bad
        if rng.random() < dirt.missing_field_rate:
            kind = rng.randrange(3)
            if kind == 2:
                ev["event_ts"] = "not-a-date"
            else:
                del ev[("event_id", "event_ts")[kind]]


def _malformed(rng: random.Random, sample: bytes) -> bytes:
    kind = rng.randrange(5)
    if kind == 0:  # a torn write: any proper prefix of a JSON object leaves it unclosed
        return sample[: 10 + rng.randrange(max(1, len(sample) - 12))]
    if kind == 1:
        return _pick(rng, _BARE_TEXT)
    if kind == 2:
        return b'{"a":'
    # Not an array of objects: Spark would explode those into (duplicate) rows.
    return b'["unexpected","array",42]' if kind == 3 else b"\xff\xfe garbled line from a UTF-16 writer"


def _layout(rng: random.Random, events: list[dict], n_files: int, n_sources: int, dirt: Dirt,
            day_no: int) -> list[list[bytes]]:
    """Serialise events into n_files line lists of varying size, then add duplicates and malformed lines.

    Data file k belongs to source k % n_sources.
    """
    lines = [_ENC.encode(ev).encode() for ev in events]
    n = len(lines)
    weights = [rng.lognormvariate(0.0, 0.45) for _ in range(n_files)]
    total, acc, bounds = sum(weights), 0.0, [0]
    for w in weights:
        acc += w
        bounds.append(min(n, round(n * acc / total)))
    bounds[-1] = n
    files = [lines[bounds[k]:bounds[k + 1]] for k in range(n_files)]
    dup_rate = 0.1 if dirt.bad_day == day_no else dirt.duplicate_rate
    with_id = [i for i, ev in enumerate(events) if "event_id" in ev]
    dups = rng.sample(with_id, min(len(with_id), round(dup_rate * n)))
    for i in dups:
        f = bisect.bisect_right(bounds, i) - 1
        same = range(f % n_sources, n_files, n_sources)
        if len(same) > 1:
            j = rng.randrange(len(same) - 1)
            target = same[j + (j >= f // n_sources)]
        else:
            target = (f + 1 + rng.randrange(n_files - 1)) % n_files if n_files > 1 else f
        files[target].insert(rng.randrange(len(files[target]) + 1), lines[i])
    rate = dirt.malformed_rate
    for _ in range(round(rate * (n + len(dups)) / (1 - rate)) if rate < 1 else 0):
        bad = _malformed(rng, lines[rng.randrange(n)] if n else b'{"event_type":"system","message":"x"}')
        target = files[rng.randrange(n_files)]
        target.insert(rng.randrange(len(target) + 1), bad)
    return files


def _write_atomic(path: Path, data: bytes, compress: bool) -> int:
    if compress:
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as gz:
            gz.write(data)
        data = buf.getvalue()
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)
    return len(data)


def _write_day(root: Path, sources: tuple[str, ...], dt: str, files: list[list[bytes]], empty: int,
               rng: random.Random, gzip_fraction: float) -> tuple[int, int]:
    """Name and write one day's files (plus zero-byte ones); returns (files, bytes) written."""
    gz = set(rng.sample(range(len(files)), round(gzip_fraction * len(files))))
    plan = [(sources[k % len(sources)], lines, k in gz) for k, lines in enumerate(files)]
    plan += [(sources[k % len(sources)], [], False) for k in range(empty)]
    rng.shuffle(plan)  # so part numbers do not reveal which files are empty or compressed
    part = dict.fromkeys(sources, 0)
    written = 0
    for source, lines, compress in plan:
        folder = root / source / f"dt={dt}"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"part-{part[source]:05d}-{rng.getrandbits(32):08x}{_pick(rng, _EXTS)}{'.gz' if compress else ''}"
        part[source] += 1
        written += _write_atomic(folder / name, b"\n".join(lines) + b"\n" if lines else b"", compress)
    return len(plan), written


def generate(landing_root: str | Path, start: date, days: int, events_per_day: int, files_per_day: int,
             seed: int = 7, dirt: Dirt = Dirt(), sources: tuple[str, ...] = ("web", "api"),
             gzip_fraction: float = 0.1) -> GenerateSummary:
    """Write `days` days of synthetic JSON-lines logs under landing_root/<source>/dt=YYYY-MM-DD/.

    Each day holds exactly `events_per_day` distinct events in `files_per_day` data files spread
    round-robin over `sources`, plus `dirt.empty_files` zero-byte files, duplicates and malformed
    lines as configured by `dirt`. Day i (0-based) depends only on (seed, i, events_per_day,
    files_per_day, dirt, sources, gzip_fraction), so the same arguments give byte-identical files.
    """
    if days < 0 or events_per_day < 0 or files_per_day < 1 or not sources or not 0 <= gzip_fraction <= 1:
        raise ValueError("need days>=0, events_per_day>=0, files_per_day>=1, sources, 0<=gzip_fraction<=1")
    root = Path(landing_root)
    users = _users(seed, max(1, events_per_day // 20))
    dts, n_files, n_lines, n_bytes = [], 0, 0, 0
    for i in range(days):
        dt = start + timedelta(days=i)
        rng = random.Random(f"{seed}:{i}")
        events = _Day(rng, dt, users, dirt, i + 1).events(events_per_day)
        _spoil(rng, events, dirt)
        rng.shuffle(events)
        files = _layout(rng, events, files_per_day, len(sources), dirt, i + 1)
        f, b = _write_day(root, tuple(sources), dt.isoformat(), files, dirt.empty_files, rng, gzip_fraction)
        dts.append(dt.isoformat())
        n_files, n_bytes, n_lines = n_files + f, n_bytes + b, n_lines + sum(map(len, files))
    return GenerateSummary(days=dts, files=n_files, events=events_per_day * days, lines=n_lines, bytes=n_bytes)
