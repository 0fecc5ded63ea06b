#!/usr/bin/env python3
"""Independent iCalendar recurrence-expansion corpus for Kairos (issue 3).

Run:  python3 tests/conformance/generate.py > tests/conformance/corpus.json

The script builds every case's VCALENDAR text, parses it back with the
`icalendar` package (the text must parse without errors; DTSTART, DTEND,
DURATION, RRULE, RDATE, EXDATE, RECURRENCE-ID, RANGE and STATUS are read from
the parsed objects, not from Python variables), expands the RRULE with
python-dateutil's `rrule` (`rrulestr`), applies RDATE / EXDATE /
RECURRENCE-ID explicitly (below), and writes the instances that overlap each
case's window.  It is deterministic: no wall clock, no randomness, zone data
from the pinned `tzdata` wheel (the machine's /usr/share/zoneinfo is never
read, see `zoneinfo.reset_tzpath` below), and the output is byte-stable.  Any
failed self-check prints the reasons to stderr, writes nothing to stdout and
exits 1.

Semantics used (RFC 5545 section numbers in brackets)
-----------------------------------------------------
* Content lines [3.1]: CRLF line ends; lines longer than 75 octets are folded
  (CRLF + one SPACE) without splitting a UTF-8 sequence.  Some cases also fold
  shorter lines exactly where the RFC's own examples are folded, fold in the
  middle of a property name, or fold with an HTAB -- all legal per [3.1].
* Date-time forms [3.3.5]: "Z" = UTC; no "Z" and no TZID = floating; TZID =
  local time in that zone.  A local time that does not exist (spring-forward
  gap) is "interpreted using the UTC offset before the gap" (02:30 on the US
  spring-forward day = 03:30 EDT); a local time that occurs twice (fall-back
  overlap) is "the first occurrence" (01:30 on the US fall-back day = 01:30
  EDT).  In Python terms: wall time with fold=0 in `zoneinfo` -- and the
  script asserts that this is what zoneinfo does for hand-computed examples.
* Recurrence [3.3.10, 3.8.5.3]: dateutil expands RRULE in local wall-clock
  time of DTSTART's zone (so 09:00 stays 09:00 across DST), then each wall
  time is resolved as above.  Invalid dates (Feb 30, a 31st in a 30-day
  month, Feb 29 in a common year) are skipped and not counted [3.3.10].
  UNTIL is inclusive and, for TZID/UTC DTSTART, a UTC instant compared as an
  instant.  COUNT counts instances before EXDATE is applied.
* DTSTART is the first instance [3.8.5.1-3].  Every case keeps DTSTART
  synchronized with its RRULE (or excludes it with EXDATE, as the RFC's
  "Friday the 13th" example does) because an unsynchronized DTSTART is
  "undefined" [3.8.5.3]; the script asserts this.
* Recurrence set [3.8.5.1, 3.8.5.2, 3.8.5.3]: (DTSTART + RRULE instances +
  RDATE values), duplicates collapsed, minus EXDATE values.  EXDATE wins over
  RDATE.  Start values are compared as UTC instants for UTC/TZID values
  (whatever zone each value is written in), as dates for DATE values and as
  wall times for floating values.  This script does the set arithmetic itself
  instead of using `rruleset`, because Python compares two aware datetimes
  with the same tzinfo by wall time, ignoring `fold`.
* Durations [3.3.6, 3.6.1, 3.8.2.2, 3.8.2.5, 3.8.5.3]: with DTEND every
  instance gets the same EXACT duration (DTEND - DTSTART as instants; in days
  for DATE values); with DURATION the NOMINAL part (days, weeks) is added in
  local wall time first, then the exact part (hours, minutes, seconds) as
  elapsed time -- so P1D across a DST change is 23 h or 25 h while PT24H is
  always 24 h.  Neither DTEND nor DURATION: a DATE DTSTART lasts one day, a
  DATE-TIME DTSTART has zero length [3.6.1].  An RDATE date-time gets the
  master's duration; an RDATE PERIOD brings its own end or duration.
* Overrides [3.8.4.4, 3.2.13]: a VEVENT with the same UID and a RECURRENCE-ID
  replaces the instance whose ORIGINAL start equals the RECURRENCE-ID (same
  comparison rules as EXDATE); its own DTSTART and DTEND/DURATION give the new
  times (every override in the corpus carries one of them).  STATUS:CANCELLED
  [3.8.1.11] on an override removes that instance (CalDAV/iTIP practice; the
  RFC gives no expansion rule for it).  RANGE=THISANDFUTURE: the instance and
  every later one (ordered by original start, "determined by their
  RECURRENCE-ID value and not their current scheduled start time") are moved
  by the same time difference (override DTSTART - RECURRENCE-ID) and take the
  override's duration, except instances that have an override of their own
  ("not impacted").  The corpus only uses THISANDFUTURE where no DST change
  lies between the shifted times, so an "exact" and a "wall-clock" shift give
  the same answer (asserted).  Every RECURRENCE-ID names an instance of the
  set (asserted).
* Time zones [3.2.19, 3.6.5]: IANA TZIDs resolve through zoneinfo.  A TZID
  that is not an IANA name comes with a VTIMEZONE in the calendar; its
  expectations are computed with the equivalent IANA zone named in the case,
  and the script checks that the VTIMEZONE (as interpreted by icalendar /
  dateutil.tz) gives the same UTC offset for every unambiguous local time it
  is used at.
* X-WR-TIMEZONE is not used: floating times stay floating in this corpus.

Output conventions (tests/conformance/README.md repeats them)
-------------------------------------------------------------
* `window` is a half-open UTC interval [start, end).  `expected` lists every
  instance that OVERLAPS it (instance end > window start and instance start <
  window end), sorted by start then end.  Zero-length instances exactly at a
  window start are avoided by construction (asserted), because conventions
  differ for them.
* Timed instances: {"start", "end"} as UTC instants with "Z".
* All-day (DATE) instances: {"start_date", "end_date"}, end exclusive; for
  the window test the dates are taken as UTC midnights (start_date 00:00Z to
  end_date 00:00Z).
* Floating instances: {"start_local", "end_local"} without offset; for the
  window test they are compared as if they were UTC.
* Sub-daily (SECONDLY/MINUTELY/HOURLY) rules never cross a DST change in this
  corpus: RFC 5545 expands them in wall-clock time, which can produce two
  instances at the same instant or skip elapsed hours, and implementations
  legitimately disagree there.

RFC 5545 3.8.5.3 cross-check
----------------------------
Every example of 3.8.5.3 is a case with source "rfc5545 3.8.5.3" (examples
that give two equivalent RRULEs become two cases).  Each one's "==>" listing
is transcribed below verbatim and parsed: "a-b" is a range, "x,y...z" and
"x,y, ... z" continue the arithmetic step of the two preceding values up to z,
and a trailing "..." means the listing is only a prefix of an unbounded set.
The listed local time and EDT/EST label are checked too (EDT = UTC-4, EST =
UTC-5).  A mismatch with dateutil's expansion fails the script.  No example's
cross-check is skipped.  One printed example is wrong: "Every 3 hours from
9:00 AM to 5:00 PM" has UNTIL=19970902T170000Z (13:00 EDT) but lists 15:00;
RFC 5545 verified erratum 3883 corrects UNTIL to 19970902T210000Z.  The corpus
has both rules: the corrected one is checked against the printed listing, the
printed one against the listing its UNTIL implies (09:00, 12:00).
"""

from __future__ import annotations

import zoneinfo

# Use the `tzdata` wheel (a dependency of icalendar) for every zone, never the
# machine's zone files: this must run before any ZoneInfo is created.
zoneinfo.reset_tzpath(to=[])

import datetime as dt  # noqa: E402
import importlib.metadata  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
from zoneinfo import ZoneInfo  # noqa: E402

import icalendar  # noqa: E402
from dateutil.rrule import rrulestr  # noqa: E402

UTC = dt.timezone.utc
FOLD = "\x1f"  # marker in a case's line: fold here (CRLF SPACE)
FOLD_TAB = "\x1e"  # marker: fold here with CRLF HTAB
MAX_INSTANCES_PER_CASE = 200
DTSTAMP = "DTSTAMP:20260101T000000Z"

NY = "America/New_York"
BERLIN = "Europe/Berlin"
LORD_HOWE = "Australia/Lord_Howe"
KOLKATA = "Asia/Kolkata"
SYDNEY = "Australia/Sydney"
SAO_PAULO = "America/Sao_Paulo"


class CaseError(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise CaseError(msg)


# --------------------------------------------------------------------------
# Writing iCalendar text
# --------------------------------------------------------------------------


def fold_line(line: str) -> list[str]:
    """Fold one content line per RFC 5545 3.1: at most 75 octets per physical
    line (excluding CRLF), continuation lines start with one SPACE (or HTAB at
    a FOLD_TAB marker), never inside a UTF-8 sequence.  FOLD/FOLD_TAB markers
    force a fold at that position."""
    out: list[str] = []
    cur = ""
    cur_len = 0
    for ch in line:
        if ch in (FOLD, FOLD_TAB):
            out.append(cur)
            cur = " " if ch == FOLD else "\t"
            cur_len = 1
            continue
        n = len(ch.encode("utf-8"))
        if cur_len + n > 75:
            out.append(cur)
            cur, cur_len = " ", 1
        cur += ch
        cur_len += n
    out.append(cur)
    return out


def build_ics(events: list[list[str]], timezones: list[list[str]]) -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Kairos//Conformance corpus generator//EN",
        "CALSCALE:GREGORIAN",
    ]
    for tz in timezones:
        lines += tz
    for ev in events:
        lines += ["BEGIN:VEVENT", *ev, "END:VEVENT"]
    lines.append("END:VCALENDAR")
    physical = [p for line in lines for p in fold_line(line)]
    for p in physical:
        check(len(p.encode("utf-8")) <= 75, f"physical line too long: {p!r}")
    return "".join(p + "\r\n" for p in physical)


def unfold(text: str) -> list[str]:
    """Our own unfolding (RFC 5545 3.1), used only to read DURATION literals,
    which icalendar turns into a timedelta that cannot tell P1D from PT24H."""
    return re.sub(r"\r\n[ \t]", "", text).split("\r\n")


# --------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------


class Val:
    """A DATE / DATE-TIME value as written: kind is 'date', 'floating', 'utc'
    or 'zoned'; wall is the written wall time (naive; midnight for dates)."""

    __slots__ = ("kind", "wall", "tzid", "zone")

    def __init__(self, kind, wall, tzid=None, zone=None):
        self.kind, self.wall, self.tzid, self.zone = kind, wall, tzid, zone

    @property
    def cls(self):
        return {"date": "date", "floating": "floating", "utc": "timed", "zoned": "timed"}[self.kind]

    def aware(self):
        if self.kind == "utc":
            return self.wall.replace(tzinfo=UTC)
        check(self.kind == "zoned", "aware() on a date/floating value")
        # fold=0: gap -> offset before the gap, overlap -> first occurrence (3.3.5)
        return self.wall.replace(tzinfo=self.zone, fold=0)

    def point(self):
        """The comparable start: UTC instant, date, or floating wall time."""
        if self.kind in ("utc", "zoned"):
            return self.aware().astimezone(UTC)
        if self.kind == "date":
            return self.wall.date()
        return self.wall

    def with_wall(self, wall):
        return Val(self.kind, wall, self.tzid, self.zone)


class Ctx:
    """Per-case context: TZID -> IANA zone resolution, and every zoned value
    seen (for the VTIMEZONE cross-check)."""

    def __init__(self, tz_equiv):
        self.tz_equiv = tz_equiv or {}
        self.zoned_seen: list[Val] = []

    def zone(self, tzid):
        name = self.tz_equiv.get(tzid, tzid)
        check(name in AVAILABLE_ZONES, f"TZID {tzid!r} is neither IANA nor mapped")
        return ZoneInfo(name)

    def val(self, d, params) -> Val:
        if isinstance(d, dt.datetime):
            if d.tzinfo is None:
                check("TZID" not in params, "floating value with TZID")
                return Val("floating", d)
            tzid = params.get("TZID")
            if tzid:
                v = Val("zoned", d.replace(tzinfo=None), tzid, self.zone(tzid))
                self.zoned_seen.append(v)
                return v
            check(d.utcoffset() == dt.timedelta(0), f"non-UTC value without TZID: {d!r}")
            return Val("utc", d.replace(tzinfo=None))
        check(isinstance(d, dt.date), f"unexpected value {d!r}")
        check("TZID" not in params, "DATE value with TZID")
        return Val("date", dt.datetime.combine(d, dt.time()))

    def prop_val(self, prop) -> Val:
        return self.val(prop.dt, prop.params)

    def list_vals(self, ev, name):
        """All values of a multi-valued property (EXDATE/RDATE), possibly on
        several lines; periods come back as (Val, end-Val | timedelta)."""
        props = ev.get(name)
        if props is None:
            return []
        if not isinstance(props, list):
            props = [props]
        out = []
        for p in props:
            for item in p.dts:
                d = item.dt
                if isinstance(d, tuple):
                    start, end = d
                    sv = self.val(start, p.params)
                    if isinstance(end, dt.timedelta):
                        out.append((sv, end))
                    else:
                        out.append((sv, self.val(end, p.params)))
                else:
                    out.append(self.val(d, p.params))
        return out


class Dur:
    """Nominal days (added in wall time) + exact part (added as elapsed time)."""

    def __init__(self, days=0, exact=dt.timedelta(0)):
        self.days, self.exact = days, exact

    def end_of(self, start: Val, ctx: Ctx):
        if start.kind == "date":
            check(self.exact == dt.timedelta(0), "exact duration on an all-day value")
            return start.wall.date() + dt.timedelta(days=self.days)
        if start.kind == "floating":
            return start.wall + dt.timedelta(days=self.days) + self.exact
        moved = start.with_wall(start.wall + dt.timedelta(days=self.days))
        if moved.kind == "zoned" and self.days:
            ctx.zoned_seen.append(moved)
        return moved.point() + self.exact


DUR_RE = re.compile(r"([+-])?P(?:(\d+)W|(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?)")


def parse_duration(text: str) -> Dur:
    m = DUR_RE.fullmatch(text)
    check(m is not None and text not in ("P", "+P", "-P"), f"bad DURATION {text!r}")
    check(m.group(1) != "-", "negative DURATION not used in this corpus")
    weeks, days, h, mi, s = (int(x) if x else 0 for x in m.groups()[1:])
    return Dur(days=7 * weeks + days, exact=dt.timedelta(hours=h, minutes=mi, seconds=s))


def raw_durations(ics: str) -> list[str | None]:
    """DURATION literal of each VEVENT, in file order (None if absent)."""
    out, cur, inside = [], None, False
    for line in unfold(ics):
        up = line.upper()
        if up == "BEGIN:VEVENT":
            inside, cur = True, None
        elif up == "END:VEVENT":
            out.append(cur)
            inside = False
        elif inside and re.match(r"DURATION[;:]", up):
            cur = line.split(":", 1)[1]
    return out


def event_duration(ev, raw_dur, start: Val, ctx: Ctx, default_ok=True) -> Dur:
    """Duration of a VEVENT per 3.6.1 / 3.8.2.2 / 3.8.2.5 / 3.8.5.3."""
    check(not ("DTEND" in ev and "DURATION" in ev), "both DTEND and DURATION")
    if "DTEND" in ev:
        end = ctx.prop_val(ev["DTEND"])
        check(end.cls == start.cls, "DTEND and DTSTART of different kinds")
        if start.kind == "date":
            return Dur(days=(end.wall.date() - start.wall.date()).days)
        if start.kind == "floating":
            return Dur(exact=end.wall - start.wall)
        return Dur(exact=end.point() - start.point())  # exact duration (3.8.5.3)
    if "DURATION" in ev:
        check(raw_dur is not None, "DURATION literal not found")
        d = parse_duration(raw_dur)
        check(
            dt.timedelta(days=d.days) + d.exact == ev["DURATION"].dt,
            f"our DURATION parse of {raw_dur!r} disagrees with icalendar",
        )
        return d
    check(default_ok, "override without DTEND/DURATION")
    return Dur(days=1) if start.kind == "date" else Dur()  # 3.6.1


def cmp_point(p):
    """Map a start/end point onto the UTC time line for window tests."""
    if isinstance(p, dt.datetime):
        return p if p.tzinfo else p.replace(tzinfo=UTC)
    return dt.datetime.combine(p, dt.time(), tzinfo=UTC)


def parse_utc(s: str) -> dt.datetime:
    check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", s) is not None, f"bad window bound {s}")
    return dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


# --------------------------------------------------------------------------
# Expansion
# --------------------------------------------------------------------------


def expand(ics: str, window, tz_equiv=None):
    """Returns (instances, kind, truncated, ctx): instances is the full sorted
    list of (start, end) points up to an iteration horizon past the window."""
    cal = icalendar.Calendar.from_ical(ics)
    for comp in cal.walk():
        check(not comp.errors, f"icalendar reported errors in {comp.name}: {comp.errors}")
    ctx = Ctx(tz_equiv)

    vtz = {str(tz["TZID"]): tz for tz in cal.walk("VTIMEZONE")}
    for tzid in vtz:
        check(tzid not in AVAILABLE_ZONES, f"VTIMEZONE for IANA name {tzid}")
        check(tzid in ctx.tz_equiv, f"VTIMEZONE {tzid} has no IANA equivalent in the case")
    for tzid in ctx.tz_equiv:
        check(tzid in vtz, f"mapped TZID {tzid} has no VTIMEZONE")

    events = cal.walk("VEVENT")
    durs = raw_durations(ics)
    check(len(durs) == len(events), "VEVENT count mismatch")
    masters = [i for i, e in enumerate(events) if "RECURRENCE-ID" not in e]
    check(len(masters) == 1, "exactly one master VEVENT expected")
    mi = masters[0]
    master = events[mi]
    uid = str(master["UID"])
    for e in events:
        check(str(e["UID"]) == uid, "override with a different UID")

    start = ctx.prop_val(master["DTSTART"])
    kind = start.cls
    dur = event_duration(master, durs[mi], start, ctx)

    ws, we = (parse_utc(x) for x in window)
    check(ws < we, "empty window")

    # Overrides first: they widen the horizon.
    overrides = []
    for i, e in enumerate(events):
        if i == mi:
            continue
        rid_prop = e["RECURRENCE-ID"]
        rid = ctx.prop_val(rid_prop)
        check(rid.cls == kind, "RECURRENCE-ID kind differs from DTSTART")
        rng = rid_prop.params.get("RANGE")
        check(rng in (None, "THISANDFUTURE"), f"bad RANGE {rng}")
        status = str(e.get("STATUS", "")).upper()
        if status == "CANCELLED":
            overrides.append({"rid": rid.point(), "cancel": True, "range": rng})
            continue
        ostart = ctx.prop_val(e["DTSTART"])
        check(ostart.cls == kind, "override DTSTART kind differs")
        odur = event_duration(e, durs[i], ostart, ctx, default_ok=False)
        overrides.append(
            {
                "rid": rid.point(),
                "rid_val": rid,
                "cancel": False,
                "range": rng,
                "start_val": ostart,
                "start": ostart.point(),
                "end": odur.end_of(ostart, ctx),
            }
        )
    rids = [o["rid"] for o in overrides]
    check(len(set(rids)) == len(rids), "two overrides for one RECURRENCE-ID")
    check(sum(1 for o in overrides if o["range"]) <= 1, "at most one THISANDFUTURE per case")
    check(not any(o["range"] and o["cancel"] for o in overrides), "THISANDFUTURE + CANCELLED is not used here")

    max_shift = dt.timedelta(0)
    for o in overrides:
        if o["range"] and not o["cancel"]:
            max_shift = max(max_shift, abs(cmp_point(o["start"]) - cmp_point(o["rid"])))
    horizon = we + dt.timedelta(hours=3) + max_shift
    for r in rids:
        horizon = max(horizon, cmp_point(r) + dt.timedelta(hours=3))

    # ---- recurrence set: DTSTART + RRULE + RDATE - EXDATE (3.8.5.x)
    inst: dict = {}  # start point -> {"val": Val, "end": end point}

    def add(v: Val, end):
        p = v.point()
        if p in inst:
            check(inst[p]["end"] == end, f"duplicate start {p} with a different end")
            return
        inst[p] = {"val": v, "end": end}

    add(start, dur.end_of(start, ctx))

    truncated = False
    exdates = ctx.list_vals(master, "EXDATE")
    for x in exdates:
        check(isinstance(x, Val) and x.cls == kind, "EXDATE kind differs from DTSTART")
    ex_points = {x.point() for x in exdates}

    rr = master.get("RRULE")
    if rr is not None:
        check(not isinstance(rr, list), "one RRULE per event")
        rule_text = rr.to_ical().decode()
        if start.kind in ("zoned", "utc"):
            ds = start.aware()
        else:
            ds = start.wall
        rule = rrulestr(rule_text, dtstart=ds)
        first = True
        count = 0
        for d in rule:
            count += 1
            check(count < 3_000_000, "runaway expansion")
            if start.kind == "zoned":
                v = Val("zoned", d.replace(tzinfo=None), start.tzid, start.zone)
                ctx.zoned_seen.append(v)
            elif start.kind == "utc":
                v = Val("utc", d.astimezone(UTC).replace(tzinfo=None))
            else:
                v = Val(start.kind, d)
            if first:
                check(
                    v.wall == start.wall or start.point() in ex_points,
                    f"DTSTART {start.wall} not synchronized with RRULE (first {v.wall})",
                )
                first = False
            if cmp_point(v.point()) > horizon:
                truncated = True
                break
            add(v, dur.end_of(v, ctx))

    for r in ctx.list_vals(master, "RDATE"):
        if isinstance(r, tuple):
            sv, end = r
            check(sv.cls == kind == "timed", "PERIOD RDATE only on timed events here")
            if isinstance(end, dt.timedelta):
                check(sv.kind == "utc" or end.days == 0, "ambiguous nominal PERIOD duration")
                add(sv, sv.point() + end)
            else:
                add(sv, end.point())
        else:
            check(r.cls == kind, "RDATE kind differs from DTSTART")
            add(r, dur.end_of(r, ctx))

    for p in ex_points:
        inst.pop(p, None)

    # ---- RECURRENCE-ID overrides (3.8.4.4)
    for o in overrides:
        check(o["rid"] in inst, f"RECURRENCE-ID {o['rid']} names no instance of the set")
    own = {o["rid"] for o in overrides}
    result = []
    tf = next((o for o in overrides if o["range"]), None)
    for p in sorted(inst, key=cmp_point):
        entry = inst[p]
        o = next((o for o in overrides if o["rid"] == p), None)
        if o is not None:
            if not o["cancel"]:
                result.append((o["start"], o["end"]))
            continue
        s, e = p, entry["end"]
        if tf is not None and cmp_point(p) > cmp_point(tf["rid"]) and p not in own:
            delta = tf["start"] - tf["rid"]
            length = tf["end"] - tf["start"]
            s = p + delta
            e = s + length
            if kind == "timed":
                # only unambiguous shifts: every involved local time has one offset
                z = tf["rid_val"].zone or UTC
                offs = {
                    x.astimezone(z).utcoffset()
                    for x in (p, s, e, tf["rid"], tf["start"], tf["end"])
                }
                check(len(offs) == 1, "THISANDFUTURE shift crosses a UTC offset change")
        result.append((s, e))

    result.sort(key=lambda se: (cmp_point(se[0]), cmp_point(se[1])))

    # ---- VTIMEZONE cross-check against the IANA equivalent
    if vtz:
        vtz_tz = {tzid: comp.to_tz() for tzid, comp in vtz.items()}
        checked = 0
        for v in ctx.zoned_seen:
            if v.tzid not in vtz_tz:
                continue
            a0 = v.wall.replace(tzinfo=v.zone, fold=0).utcoffset()
            a1 = v.wall.replace(tzinfo=v.zone, fold=1).utcoffset()
            if a0 != a1:
                continue  # gap/overlap: dateutil.tz resolves these differently
            got = v.wall.replace(tzinfo=vtz_tz[v.tzid]).utcoffset()
            check(got == a0, f"VTIMEZONE {v.tzid} gives {got} at {v.wall}, IANA gives {a0}")
            checked += 1
        check(checked > 0, "VTIMEZONE cross-check saw no values")

    return result, kind, truncated, ctx


def fmt_point(p, kind):
    if kind == "timed":
        check(p.microsecond == 0, "sub-second instant")
        return p.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == "date":
        return p.isoformat()
    check(p.microsecond == 0 and p.tzinfo is None, "bad floating value")
    return p.strftime("%Y-%m-%dT%H:%M:%S")


def window_filter(instances, kind, window):
    ws, we = (parse_utc(x) for x in window)
    out = []
    for s, e in instances:
        cs, ce = cmp_point(s), cmp_point(e)
        check(ce >= cs, f"instance ends before it starts: {s} {e}")
        if cs == ce == ws:
            raise CaseError("zero-length instance exactly at the window start")
        if ce > ws and cs < we:
            if kind == "timed":
                out.append({"start": fmt_point(s, kind), "end": fmt_point(e, kind)})
            elif kind == "date":
                out.append({"start_date": fmt_point(s, kind), "end_date": fmt_point(e, kind)})
            else:
                out.append({"start_local": fmt_point(s, kind), "end_local": fmt_point(e, kind)})
    check(len(out) <= MAX_INSTANCES_PER_CASE, f"{len(out)} instances in window (max {MAX_INSTANCES_PER_CASE})")
    keys = [tuple(x.values()) for x in out]
    check(len(set(keys)) == len(keys), "two identical instances in the window")
    return out


# --------------------------------------------------------------------------
# RFC 5545 3.8.5.3 listings
# --------------------------------------------------------------------------

MONTHS = {
    n: i
    for i, n in enumerate(
        "January February March April May June July August September October November December".split(), 1
    )
}
LABEL_OFFSET = {"EDT": dt.timedelta(hours=-4), "EST": dt.timedelta(hours=-5)}


def _expand_tokens(tokens, what):
    """Expand RFC listing tokens: numbers, 'a-b' ranges and '...' markers.
    '...' followed by a value continues the step of the two preceding values
    up to that value; a trailing '...' marks an open-ended listing."""
    vals: list[int] = []
    open_ended = False
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t == "...":
            if i + 1 < len(tokens) and tokens[i + 1] != "...":
                target = tokens[i + 1]
                check(isinstance(target, int), f"bad continuation in {what}")
                check(len(vals) >= 2, f"continuation without a step in {what}")
                step = vals[-1] - vals[-2]
                check(step > 0, f"non-positive step in {what}")
                x = vals[-1] + step
                while x < target:
                    vals.append(x)
                    x += step
                check(x == target, f"continuation does not land on {target} in {what}")
                vals.append(target)
                i += 2
                continue
            open_ended = True
            check(all(u == "..." for u in tokens[i:]), f"values after an open '...' in {what}")
            break
        if isinstance(t, tuple):
            vals.extend(range(t[0], t[1] + 1))
        else:
            vals.append(t)
        i += 1
    return vals, open_ended


def parse_rfc_listing(text: str, default_time: dt.time):
    """Parse an RFC 5545 '==>' listing into [(local wall time, UTC offset)]."""
    s = " ".join(text.split())
    items = []
    open_ended = False
    groups = re.findall(r"\(([^)]*)\)\s*([^()]*)", s)
    check(groups and s.startswith("("), f"unparsed listing {text!r}")
    for head, body in groups:
        check(not open_ended, "listing continues after an open '...'")
        head = head.strip()
        if h := re.fullmatch(r"(\d{4}) (\d{1,2}):(\d\d) (AM|PM) (EDT|EST)", head):
            hour = int(h[2]) % 12 + (12 if h[4] == "PM" else 0)
            year, t, label, mode = int(h[1]), dt.time(hour, int(h[3])), h[5], "days"
        elif h := re.fullmatch(r"(\d{4}) (EDT|EST)", head):
            year, t, label, mode = int(h[1]), default_time, h[2], "days"
        elif h := re.fullmatch(r"([A-Z][a-z]+) (\d{1,2}), (\d{4}) (EDT|EST)", head):
            day = dt.date(int(h[3]), MONTHS[h[1]], int(h[2]))
            label, mode = h[4], "times"
        else:
            raise CaseError(f"unparsed listing header {head!r}")
        off = LABEL_OFFSET[label]
        if mode == "times":
            toks = []
            for tok in re.findall(r"\.\.\.|\d{1,2}:\d\d|\S", body):
                if tok == "...":
                    toks.append(tok)
                elif ":" in tok:
                    hh, mm = tok.split(":")
                    toks.append(int(hh) * 60 + int(mm))
                else:
                    check(tok in ",;", f"unexpected {tok!r} in {body!r}")
            minutes, op = _expand_tokens(toks, body)
            items += [(dt.datetime.combine(day, dt.time(m // 60, m % 60)), off) for m in minutes]
            open_ended |= op
            continue
        for seg in body.split(";"):
            seg = seg.strip()
            if not seg:
                continue
            if set(seg.replace(" ", "")) == {"."}:
                open_ended = True
                continue
            check(not open_ended, "listing continues after an open '...'")
            m = re.fullmatch(r"([A-Z][a-z]+)\s*(.*)", seg)
            check(m is not None and m[1] in MONTHS, f"unparsed listing segment {seg!r}")
            toks = []
            for tok in re.findall(r"\.\.\.|\d+-\d+|\d+|\S", m[2]):
                if tok == "...":
                    toks.append(tok)
                elif "-" in tok:
                    a, b = tok.split("-")
                    toks.append((int(a), int(b)))
                elif tok.isdigit():
                    toks.append(int(tok))
                else:
                    check(tok == ",", f"unexpected {tok!r} in {seg!r}")
            days, op = _expand_tokens(toks, seg)
            items += [(dt.datetime.combine(dt.date(year, MONTHS[m[1]], d), t), off) for d in days]
            open_ended |= op
    return items, open_ended


def rfc_cross_check(name, instances, truncated, listing, default_time, expected_window):
    listed, open_ended = parse_rfc_listing(listing, default_time)
    ny = ZoneInfo(NY)
    got = []
    for s, _ in instances:
        loc = s.astimezone(ny)
        got.append((loc.replace(tzinfo=None), loc.utcoffset()))
    if open_ended:
        check(len(got) >= len(listed), f"dateutil gave fewer instances than the RFC lists")
        got = got[: len(listed)]
    else:
        check(not truncated, f"RFC listing is complete but the rule did not end")
    if got != listed:
        diff = [
            (i, g, l) for i, (g, l) in enumerate(zip(got, listed)) if g != l
        ][:5]
        raise CaseError(
            f"dateutil disagrees with RFC 5545 listing "
            f"({len(got)} vs {len(listed)} instances; first differences {diff})"
        )
    # every listed instance must also be in the corpus window
    in_window = {x["start"] for x in expected_window}
    for wall, off in listed:
        s = (wall - off).strftime("%Y-%m-%dT%H:%M:%SZ")
        check(s in in_window, f"RFC-listed {wall} is outside the case window")
    return len(listed), open_ended


# --------------------------------------------------------------------------
# RFC 5545 3.8.5.3 examples (listings transcribed verbatim from the RFC)
# --------------------------------------------------------------------------

RFC = []


def rfc(name, title, dtstart, rrule, listing, window, exdate=None, length="PT1H", fold_at=None):
    RFC.append(
        dict(
            name=name,
            title=title,
            dtstart=dtstart,
            rrule=rrule,
            listing=listing,
            window=window,
            exdate=exdate,
            length=length,
            fold_at=fold_at,
        )
    )


W97 = ("1997-09-01T00:00:00Z", "1998-01-01T00:00:00Z")

rfc("rfc5545-daily-for-10-occurrences", "Daily for 10 occurrences",
    "19970902T090000", "FREQ=DAILY;COUNT=10",
    "(1997 9:00 AM EDT) September 2-11", W97)
rfc("rfc5545-daily-until-1997-12-24", "Daily until December 24, 1997",
    "19970902T090000", "FREQ=DAILY;UNTIL=19971224T000000Z",
    """(1997 9:00 AM EDT) September 2-30;October 1-25
       (1997 9:00 AM EST) October 26-31;November 1-30;December 1-23""", W97)
rfc("rfc5545-every-other-day-forever", "Every other day - forever",
    "19970902T090000", "FREQ=DAILY;INTERVAL=2",
    """(1997 9:00 AM EDT) September 2,4,6,8...24,26,28,30;
                          October 2,4,6...20,22,24
       (1997 9:00 AM EST) October 26,28,30;
                          November 1,3,5,7...25,27,29;
                          December 1,3,...""", W97)
rfc("rfc5545-every-10-days-5-occurrences", "Every 10 days, 5 occurrences",
    "19970902T090000", "FREQ=DAILY;INTERVAL=10;COUNT=5",
    """(1997 9:00 AM EDT) September 2,12,22;
                          October 2,12""", W97)
JAN3 = """(1998 9:00 AM EST)January 1-31
          (1999 9:00 AM EST)January 1-31
          (2000 9:00 AM EST)January 1-31"""
rfc("rfc5545-every-day-in-january-for-3-years-yearly", "Every day in January, for 3 years (YEARLY form)",
    "19980101T090000", "FREQ=YEARLY;UNTIL=20000131T140000Z;" + FOLD + "BYMONTH=1;BYDAY=SU,MO,TU,WE,TH,FR,SA",
    JAN3, ("1998-01-01T00:00:00Z", "2000-02-01T00:00:00Z"))
rfc("rfc5545-every-day-in-january-for-3-years-daily", "Every day in January, for 3 years (DAILY form)",
    "19980101T090000", "FREQ=DAILY;UNTIL=20000131T140000Z;BYMONTH=1",
    JAN3, ("1998-01-01T00:00:00Z", "2000-02-01T00:00:00Z"))
rfc("rfc5545-weekly-for-10-occurrences", "Weekly for 10 occurrences",
    "19970902T090000", "FREQ=WEEKLY;COUNT=10",
    """(1997 9:00 AM EDT) September 2,9,16,23,30;October 7,14,21
       (1997 9:00 AM EST) October 28;November 4""", W97)
rfc("rfc5545-weekly-until-1997-12-24", "Weekly until December 24, 1997",
    "19970902T090000", "FREQ=WEEKLY;UNTIL=19971224T000000Z",
    """(1997 9:00 AM EDT) September 2,9,16,23,30;
                          October 7,14,21
       (1997 9:00 AM EST) October 28;
                          November 4,11,18,25;
                          December 2,9,16,23""", W97)
rfc("rfc5545-every-other-week-forever", "Every other week - forever",
    "19970902T090000", "FREQ=WEEKLY;INTERVAL=2;WKST=SU",
    """(1997 9:00 AM EDT) September 2,16,30;
                          October 14
       (1997 9:00 AM EST) October 28;
                          November 11,25;
                          December 9,23
       (1998 9:00 AM EST) January 6,20;
                          February 3, 17
       ...""", ("1997-09-01T00:00:00Z", "1998-03-01T00:00:00Z"))
TUTH5 = """(1997 9:00 AM EDT) September 2,4,9,11,16,18,23,25,30;
                              October 2"""
rfc("rfc5545-weekly-tu-th-for-five-weeks-until", "Weekly on Tuesday and Thursday for five weeks (UNTIL form)",
    "19970902T090000", "FREQ=WEEKLY;UNTIL=19971007T000000Z;WKST=SU;BYDAY=TU,TH",
    TUTH5, ("1997-09-01T00:00:00Z", "1997-11-01T00:00:00Z"))
rfc("rfc5545-weekly-tu-th-for-five-weeks-count", "Weekly on Tuesday and Thursday for five weeks (COUNT form)",
    "19970902T090000", "FREQ=WEEKLY;COUNT=10;WKST=SU;BYDAY=TU,TH",
    TUTH5, ("1997-09-01T00:00:00Z", "1997-11-01T00:00:00Z"))
rfc("rfc5545-every-other-week-mo-we-fr-until-1997-12-24",
    "Every other week on Monday, Wednesday, and Friday until December 24, 1997, starting on Monday, September 1, 1997",
    "19970901T090000", "FREQ=WEEKLY;INTERVAL=2;UNTIL=19971224T000000Z;WKST=SU;" + FOLD + "BYDAY=MO,WE,FR",
    """(1997 9:00 AM EDT) September 1,3,5,15,17,19,29;
                          October 1,3,13,15,17
       (1997 9:00 AM EST) October 27,29,31;
                          November 10,12,14,24,26,28;
                          December 8,10,12,22""", W97)
rfc("rfc5545-every-other-week-tu-th-8-occurrences", "Every other week on Tuesday and Thursday, for 8 occurrences",
    "19970902T090000", "FREQ=WEEKLY;INTERVAL=2;COUNT=8;WKST=SU;BYDAY=TU,TH",
    """(1997 9:00 AM EDT) September 2,4,16,18,30;
                          October 2,14,16""", W97)
rfc("rfc5545-monthly-first-friday-10-occurrences", "Monthly on the first Friday for 10 occurrences",
    "19970905T090000", "FREQ=MONTHLY;COUNT=10;BYDAY=1FR",
    """(1997 9:00 AM EDT) September 5;October 3
       (1997 9:00 AM EST) November 7;December 5
       (1998 9:00 AM EST) January 2;February 6;March 6;April 3
       (1998 9:00 AM EDT) May 1;June 5""", ("1997-09-01T00:00:00Z", "1998-07-01T00:00:00Z"))
rfc("rfc5545-monthly-first-friday-until-1997-12-24", "Monthly on the first Friday until December 24, 1997",
    "19970905T090000", "FREQ=MONTHLY;UNTIL=19971224T000000Z;BYDAY=1FR",
    """(1997 9:00 AM EDT) September 5; October 3
       (1997 9:00 AM EST) November 7; December 5""", W97)
rfc("rfc5545-every-other-month-first-and-last-sunday-10-occurrences",
    "Every other month on the first and last Sunday of the month for 10 occurrences",
    "19970907T090000", "FREQ=MONTHLY;INTERVAL=2;COUNT=10;BYDAY=1SU,-1SU",
    """(1997 9:00 AM EDT) September 7,28
       (1997 9:00 AM EST) November 2,30
       (1998 9:00 AM EST) January 4,25;March 1,29
       (1998 9:00 AM EDT) May 3,31""", ("1997-09-01T00:00:00Z", "1998-06-01T00:00:00Z"))
rfc("rfc5545-monthly-second-to-last-monday-6-months", "Monthly on the second-to-last Monday of the month for 6 months",
    "19970922T090000", "FREQ=MONTHLY;COUNT=6;BYDAY=-2MO",
    """(1997 9:00 AM EDT) September 22;October 20
       (1997 9:00 AM EST) November 17;December 22
       (1998 9:00 AM EST) January 19;February 16""", ("1997-09-01T00:00:00Z", "1998-03-01T00:00:00Z"))
rfc("rfc5545-monthly-third-to-last-day-forever", "Monthly on the third-to-the-last day of the month, forever",
    "19970928T090000", "FREQ=MONTHLY;BYMONTHDAY=-3",
    """(1997 9:00 AM EDT) September 28
       (1997 9:00 AM EST) October 29;November 28;December 29
       (1998 9:00 AM EST) January 29;February 26
       ...""", ("1997-09-01T00:00:00Z", "1998-03-01T00:00:00Z"))
rfc("rfc5545-monthly-2nd-and-15th-10-occurrences", "Monthly on the 2nd and 15th of the month for 10 occurrences",
    "19970902T090000", "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=2,15",
    """(1997 9:00 AM EDT) September 2,15;October 2,15
       (1997 9:00 AM EST) November 2,15;December 2,15
       (1998 9:00 AM EST) January 2,15""", ("1997-09-01T00:00:00Z", "1998-02-01T00:00:00Z"))
rfc("rfc5545-monthly-first-and-last-day-10-occurrences", "Monthly on the first and last day of the month for 10 occurrences",
    "19970930T090000", "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=1,-1",
    """(1997 9:00 AM EDT) September 30;October 1
       (1997 9:00 AM EST) October 31;November 1,30;December 1,31
       (1998 9:00 AM EST) January 1,31;February 1""", ("1997-09-01T00:00:00Z", "1998-03-01T00:00:00Z"))
rfc("rfc5545-every-18-months-10th-to-15th-10-occurrences",
    "Every 18 months on the 10th thru 15th of the month for 10 occurrences",
    "19970910T090000", "FREQ=MONTHLY;INTERVAL=18;COUNT=10;BYMONTHDAY=10,11,12," + FOLD + "13,14,15",
    """(1997 9:00 AM EDT) September 10,11,12,13,14,15
       (1999 9:00 AM EST) March 10,11,12,13""", ("1997-09-01T00:00:00Z", "1999-04-01T00:00:00Z"))
rfc("rfc5545-every-tuesday-every-other-month", "Every Tuesday, every other month",
    "19970902T090000", "FREQ=MONTHLY;INTERVAL=2;BYDAY=TU",
    """(1997 9:00 AM EDT) September 2,9,16,23,30
       (1997 9:00 AM EST) November 4,11,18,25
       (1998 9:00 AM EST) January 6,13,20,27;March 3,10,17,24,31
       ...""", ("1997-09-01T00:00:00Z", "1998-04-01T00:00:00Z"))
rfc("rfc5545-yearly-june-and-july-10-occurrences", "Yearly in June and July for 10 occurrences",
    "19970610T090000", "FREQ=YEARLY;COUNT=10;BYMONTH=6,7",
    """(1997 9:00 AM EDT) June 10;July 10
       (1998 9:00 AM EDT) June 10;July 10
       (1999 9:00 AM EDT) June 10;July 10
       (2000 9:00 AM EDT) June 10;July 10
       (2001 9:00 AM EDT) June 10;July 10""", ("1997-06-01T00:00:00Z", "2002-01-01T00:00:00Z"))
rfc("rfc5545-every-other-year-jan-feb-mar-10-occurrences",
    "Every other year on January, February, and March for 10 occurrences",
    "19970310T090000", "FREQ=YEARLY;INTERVAL=2;COUNT=10;BYMONTH=1,2,3",
    """(1997 9:00 AM EST) March 10
       (1999 9:00 AM EST) January 10;February 10;March 10
       (2001 9:00 AM EST) January 10;February 10;March 10
       (2003 9:00 AM EST) January 10;February 10;March 10""", ("1997-03-01T00:00:00Z", "2004-01-01T00:00:00Z"))
rfc("rfc5545-every-third-year-yeardays-1-100-200",
    "Every third year on the 1st, 100th, and 200th day for 10 occurrences",
    "19970101T090000", "FREQ=YEARLY;INTERVAL=3;COUNT=10;BYYEARDAY=1,100,200",
    """(1997 9:00 AM EST) January 1
       (1997 9:00 AM EDT) April 10;July 19
       (2000 9:00 AM EST) January 1
       (2000 9:00 AM EDT) April 9;July 18
       (2003 9:00 AM EST) January 1
       (2003 9:00 AM EDT) April 10;July 19
       (2006 9:00 AM EST) January 1""", ("1997-01-01T00:00:00Z", "2007-01-01T00:00:00Z"))
rfc("rfc5545-every-20th-monday-of-the-year", "Every 20th Monday of the year, forever",
    "19970519T090000", "FREQ=YEARLY;BYDAY=20MO",
    """(1997 9:00 AM EDT) May 19
       (1998 9:00 AM EDT) May 18
       (1999 9:00 AM EDT) May 17
       ...""", ("1997-01-01T00:00:00Z", "2000-01-01T00:00:00Z"))
rfc("rfc5545-monday-of-week-number-20", "Monday of week number 20 (where the default start of the week is Monday), forever",
    "19970512T090000", "FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO",
    """(1997 9:00 AM EDT) May 12
       (1998 9:00 AM EDT) May 11
       (1999 9:00 AM EDT) May 17
       ...""", ("1997-01-01T00:00:00Z", "2000-01-01T00:00:00Z"))
rfc("rfc5545-every-thursday-in-march", "Every Thursday in March, forever",
    "19970313T090000", "FREQ=YEARLY;BYMONTH=3;BYDAY=TH",
    """(1997 9:00 AM EST) March 13,20,27
       (1998 9:00 AM EST) March 5,12,19,26
       (1999 9:00 AM EST) March 4,11,18,25
       ...""", ("1997-03-01T00:00:00Z", "2000-01-01T00:00:00Z"))
rfc("rfc5545-every-thursday-in-june-july-august", "Every Thursday, but only during June, July, and August, forever",
    "19970605T090000", "FREQ=YEARLY;BYDAY=TH;BYMONTH=6,7,8",
    """(1997 9:00 AM EDT) June 5,12,19,26;July 3,10,17,24,31;
                          August 7,14,21,28
       (1998 9:00 AM EDT) June 4,11,18,25;July 2,9,16,23,30;
                          August 6,13,20,27
       (1999 9:00 AM EDT) June 3,10,17,24;July 1,8,15,22,29;
                          August 5,12,19,26
       ...""", ("1997-06-01T00:00:00Z", "2000-01-01T00:00:00Z"))
rfc("rfc5545-every-friday-the-13th", "Every Friday the 13th, forever",
    "19970902T090000", "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13",
    """(1998 9:00 AM EST) February 13;March 13;November 13
       (1999 9:00 AM EDT) August 13
       (2000 9:00 AM EDT) October 13
       ...""", ("1997-09-01T00:00:00Z", "2001-01-01T00:00:00Z"),
    exdate="EXDATE;TZID=America/New_York:19970902T090000")
rfc("rfc5545-first-saturday-after-first-sunday", "The first Saturday that follows the first Sunday of the month, forever",
    "19970913T090000", "FREQ=MONTHLY;BYDAY=SA;BYMONTHDAY=7,8,9,10,11,12,13",
    """(1997 9:00 AM EDT) September 13;October 11
       (1997 9:00 AM EST) November 8;December 13
       (1998 9:00 AM EST) January 10;February 7;March 7
       (1998 9:00 AM EDT) April 11;May 9;June 13...
       ...""", ("1997-09-01T00:00:00Z", "1998-07-01T00:00:00Z"))
rfc("rfc5545-us-presidential-election-day",
    "Every 4 years, the first Tuesday after a Monday in November, forever (U.S. Presidential Election day)",
    "19961105T090000", "FREQ=YEARLY;INTERVAL=4;BYMONTH=11;BYDAY=TU;" + FOLD + "BYMONTHDAY=2,3,4,5,6,7,8",
    """(1996 9:00 AM EST) November 5
       (2000 9:00 AM EST) November 7
       (2004 9:00 AM EST) November 2
       ...""", ("1996-11-01T00:00:00Z", "2005-01-01T00:00:00Z"))
rfc("rfc5545-third-tu-we-th-of-month-3-months",
    "The third instance into the month of one of Tuesday, Wednesday, or Thursday, for the next 3 months",
    "19970904T090000", "FREQ=MONTHLY;COUNT=3;BYDAY=TU,WE,TH;BYSETPOS=3",
    """(1997 9:00 AM EDT) September 4;October 7
       (1997 9:00 AM EST) November 6""", W97)
rfc("rfc5545-second-to-last-weekday-of-month", "The second-to-last weekday of the month",
    "19970929T090000", "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-2",
    """(1997 9:00 AM EDT) September 29
       (1997 9:00 AM EST) October 30;November 27;December 30
       (1998 9:00 AM EST) January 29;February 26;March 30
       ...""", ("1997-09-01T00:00:00Z", "1998-04-01T00:00:00Z"))
# RFC 5545 verified erratum 3883: the printed UNTIL=19970902T170000Z is 13:00 EDT, which contradicts
# the printed listing (15:00 EDT would be after UNTIL); the erratum corrects UNTIL to 19970902T210000Z
# (17:00 EDT).  Both are cases: the corrected rule is checked against the RFC's printed listing, and
# the rule as printed is checked against the listing that UNTIL implies (09:00 and 12:00 only; this one
# listing is therefore ours, derived from the erratum, not the RFC's text).
rfc("rfc5545-every-3-hours-9am-to-5pm", "Every 3 hours from 9:00 AM to 5:00 PM on a specific day (UNTIL per erratum 3883)",
    "19970902T090000", "FREQ=HOURLY;INTERVAL=3;UNTIL=19970902T210000Z",
    "(September 2, 1997 EDT) 09:00,12:00,15:00", ("1997-09-02T00:00:00Z", "1997-09-03T00:00:00Z"))
rfc("rfc5545-every-3-hours-9am-to-5pm-until-as-printed",
    "Every 3 hours from 9:00 AM to 5:00 PM on a specific day (UNTIL as printed: 13:00 EDT)",
    "19970902T090000", "FREQ=HOURLY;INTERVAL=3;UNTIL=19970902T170000Z",
    "(September 2, 1997 EDT) 09:00,12:00", ("1997-09-02T00:00:00Z", "1997-09-03T00:00:00Z"))
rfc("rfc5545-every-15-minutes-6-occurrences", "Every 15 minutes for 6 occurrences",
    "19970902T090000", "FREQ=MINUTELY;INTERVAL=15;COUNT=6",
    "(September 2, 1997 EDT) 09:00,09:15,09:30,09:45,10:00,10:15",
    ("1997-09-02T00:00:00Z", "1997-09-03T00:00:00Z"), length="PT10M")
rfc("rfc5545-every-90-minutes-4-occurrences", "Every hour and a half for 4 occurrences",
    "19970902T090000", "FREQ=MINUTELY;INTERVAL=90;COUNT=4",
    "(September 2, 1997 EDT) 09:00,10:30;12:00;13:30",
    ("1997-09-02T00:00:00Z", "1997-09-03T00:00:00Z"))
TWENTY = """(September 2, 1997 EDT) 9:00,9:20,9:40,10:00,10:20,
                                   ... 16:00,16:20,16:40
           (September 3, 1997 EDT) 9:00,9:20,9:40,10:00,10:20,
                                   ...16:00,16:20,16:40
           ..."""
rfc("rfc5545-every-20-minutes-9am-to-440pm-daily-byhour-byminute",
    "Every 20 minutes from 9:00 AM to 4:40 PM every day (DAILY form)",
    "19970902T090000", "FREQ=DAILY;BYHOUR=9,10,11,12,13,14,15,16;BYMINUTE=0,20,40",
    TWENTY, ("1997-09-02T00:00:00Z", "1997-09-04T00:00:00Z"), length="PT20M")
rfc("rfc5545-every-20-minutes-9am-to-440pm-minutely-byhour",
    "Every 20 minutes from 9:00 AM to 4:40 PM every day (MINUTELY form)",
    "19970902T090000", "FREQ=MINUTELY;INTERVAL=20;BYHOUR=9,10,11,12,13,14,15,16",
    TWENTY, ("1997-09-02T00:00:00Z", "1997-09-04T00:00:00Z"), length="PT20M")
rfc("rfc5545-wkst-mo-weekly-interval-2-tu-su", "An example where the days generated makes a difference because of WKST (WKST=MO)",
    "19970805T090000", "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO",
    "(1997 EDT) August 5,10,19,24", ("1997-08-01T00:00:00Z", "1997-10-01T00:00:00Z"))
rfc("rfc5545-wkst-su-weekly-interval-2-tu-su", "An example where the days generated makes a difference because of WKST (WKST=SU)",
    "19970805T090000", "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU",
    "(1997 EDT) August 5,17,19,31", ("1997-08-01T00:00:00Z", "1997-10-01T00:00:00Z"))
rfc("rfc5545-invalid-date-feb-30-ignored", "An example where an invalid date (i.e., February 30) is ignored",
    "20070115T090000", "FREQ=MONTHLY;BYMONTHDAY=15,30;COUNT=5",
    """(2007 EST) January 15,30
       (2007 EST) February 15
       (2007 EDT) March 15,30""", ("2007-01-01T00:00:00Z", "2007-04-01T00:00:00Z"))


def rfc_events(c):
    """The RFC example as a VEVENT.  The RFC gives no DTEND; each instance is
    given a DURATION (1 hour unless noted) so that instances have extent."""
    lines = [
        f"SUMMARY:{c['title']}",
        f"DTSTART;TZID=America/New_York:{c['dtstart']}",
        f"DURATION:{c['length']}",
        f"RRULE:{c['rrule']}",
    ]
    if c["exdate"]:
        lines.append(c["exdate"])
    return [lines]


# --------------------------------------------------------------------------
# Generated ("dateutil") cases
# --------------------------------------------------------------------------

GEN = []


def case(name, window, *events, tz=(), equiv=None):
    """events: VEVENT bodies (without UID/DTSTAMP, which are added)."""
    GEN.append(dict(name=name, window=window, events=list(events), tz=list(tz), equiv=equiv))


def W(a, b):
    """Window from compact bounds 'YYYY-MM-DD' or 'YYYY-MM-DDTHH:MM:SS' (UTC)."""
    def f(x):
        return x + ("T00:00:00Z" if len(x) == 10 else "Z")
    return (f(a), f(b))


CUSTOM_EASTERN = [
    "BEGIN:VTIMEZONE",
    "TZID:Custom Eastern",
    "BEGIN:DAYLIGHT",
    "TZOFFSETFROM:-0500",
    "TZOFFSETTO:-0400",
    "TZNAME:EDT",
    "DTSTART:20070311T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU",
    "END:DAYLIGHT",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:-0400",
    "TZOFFSETTO:-0500",
    "TZNAME:EST",
    "DTSTART:20071104T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU",
    "END:STANDARD",
    "END:VTIMEZONE",
]
OUTLOOK_EASTERN_ID = "(UTC-05:00) Eastern Time (US & Canada)"
OUTLOOK_EASTERN = [x.replace("TZID:Custom Eastern", "TZID:" + OUTLOOK_EASTERN_ID) for x in CUSTOM_EASTERN]
W_EUROPE = [
    "BEGIN:VTIMEZONE",
    "TZID:W. Europe Standard Time",
    "BEGIN:STANDARD",
    "DTSTART:19961027T030000",
    "TZOFFSETFROM:+0200",
    "TZOFFSETTO:+0100",
    "TZNAME:CET",
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
    "END:STANDARD",
    "BEGIN:DAYLIGHT",
    "DTSTART:19810329T020000",
    "TZOFFSETFROM:+0100",
    "TZOFFSETTO:+0200",
    "TZNAME:CEST",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
    "END:DAYLIGHT",
    "END:VTIMEZONE",
]
INDIA = [
    "BEGIN:VTIMEZONE",
    "TZID:India Standard Time",
    "BEGIN:STANDARD",
    "DTSTART:19700101T000000",
    "TZOFFSETFROM:+0530",
    "TZOFFSETTO:+0530",
    "TZNAME:IST",
    "END:STANDARD",
    "END:VTIMEZONE",
]

# ---- SECONDLY
case("secondly-interval-15-count-10", W("2027-03-01T12:00:00", "2027-03-01T12:05:00"),
     ["DTSTART:20270301T120000Z", "DURATION:PT5S", "RRULE:FREQ=SECONDLY;INTERVAL=15;COUNT=10"])
case("secondly-bysecond-byminute-limit-unbounded", W("2027-03-01T11:00:00", "2027-03-01T11:10:00"),
     ["DTSTART;TZID=Europe/Berlin:20270301T120000", "DURATION:PT10S",
      "RRULE:FREQ=SECONDLY;BYSECOND=0,30;BYMINUTE=0,1,2"])
case("secondly-interval-20-until-inclusive", W("2027-03-01T12:00:00", "2027-03-01T12:10:00"),
     ["DTSTART:20270301T120000Z", "DURATION:PT5S", "RRULE:FREQ=SECONDLY;INTERVAL=20;UNTIL=20270301T120200Z"])

# ---- MINUTELY
case("minutely-interval-7-count-12", W("2027-06-01", "2027-06-02"),
     ["DTSTART;TZID=America/New_York:20270601T090000", "DURATION:PT5M",
      "RRULE:FREQ=MINUTELY;INTERVAL=7;COUNT=12"])
case("minutely-interval-15-byhour-byday-limit", W("2027-06-01", "2027-06-22"),
     ["DTSTART;TZID=America/New_York:20270607T090000", "DURATION:PT10M",
      "RRULE:FREQ=MINUTELY;INTERVAL=15;BYHOUR=9;BYDAY=MO"])
case("minutely-bysecond-expand-count-8", W("2027-06-01", "2027-06-02"),
     ["DTSTART:20270601T080000Z", "DURATION:PT10S", "RRULE:FREQ=MINUTELY;BYSECOND=0,30;COUNT=8"])
case("minutely-bysecond-bysetpos-negative", W("2027-06-01", "2027-06-02"),
     ["DTSTART:20270601T080050Z", "DURATION:PT5S", "RRULE:FREQ=MINUTELY;BYSECOND=10,20,50;BYSETPOS=-1;COUNT=5"])

# ---- HOURLY
case("hourly-interval-5-count-10", W("2027-07-01", "2027-07-05"),
     ["DTSTART;TZID=Europe/Berlin:20270701T080000", "DTEND;TZID=Europe/Berlin:20270701T083000",
      "RRULE:FREQ=HOURLY;INTERVAL=5;COUNT=10"])
case("hourly-byhour-byminute-kolkata", W("2027-07-01", "2027-07-03"),
     ["DTSTART;TZID=Asia/Kolkata:20270701T080000", "DURATION:PT15M",
      "RRULE:FREQ=HOURLY;BYHOUR=8,12,16;BYMINUTE=0,45"])
case("hourly-interval-6-until-utc", W("2027-07-01", "2027-07-05"),
     ["DTSTART;TZID=Europe/Berlin:20270701T000000", "DURATION:PT1H",
      "RRULE:FREQ=HOURLY;INTERVAL=6;UNTIL=20270702T160000Z"])
case("hourly-byminute-bysetpos-negative", W("2027-07-01", "2027-07-02"),
     ["DTSTART:20270701T094000Z", "DURATION:PT10M", "RRULE:FREQ=HOURLY;BYMINUTE=0,20,40;BYSETPOS=-1;COUNT=5"])
case("hourly-interval-12-byyearday-first-and-last", W("2026-12-31", "2028-01-02"),
     ["DTSTART:20270101T000000Z", "DURATION:PT1H", "RRULE:FREQ=HOURLY;INTERVAL=12;BYYEARDAY=1,-1"])
case("hourly-interval-4-friday-13th", W("2027-01-01", "2028-01-01"),
     ["DTSTART;TZID=Europe/Berlin:20270813T000000", "DURATION:PT1H",
      "RRULE:FREQ=HOURLY;INTERVAL=4;BYMONTHDAY=13;BYDAY=FR"])

# ---- DAILY
case("daily-bymonth-limit", W("2027-01-29", "2027-03-04"),
     ["DTSTART;TZID=Europe/Berlin:20270130T090000", "DTEND;TZID=Europe/Berlin:20270130T100000",
      "RRULE:FREQ=DAILY;BYMONTH=1,3"])
case("daily-byday-count-10", W("2027-06-01", "2027-07-01"),
     ["DTSTART;TZID=America/New_York:20270607T090000", "DTEND;TZID=America/New_York:20270607T093000",
      "RRULE:FREQ=DAILY;BYDAY=MO,WE,FR;COUNT=10"])
case("daily-bymonthday-positive-and-negative", W("2027-01-01", "2027-04-01"),
     ["DTSTART:20270101T120000Z", "DURATION:PT1H", "RRULE:FREQ=DAILY;BYMONTHDAY=1,15,-1"])
case("daily-byhour-byminute-count-10", W("2027-05-01", "2027-06-01"),
     ["DTSTART;TZID=Europe/Berlin:20270503T083000", "DURATION:PT30M",
      "RRULE:FREQ=DAILY;BYHOUR=8,17;BYMINUTE=30;COUNT=10"])
case("daily-interval-3-until-utc", W("2027-01-01", "2027-03-01"),
     ["DTSTART;TZID=Europe/Berlin:20270104T090000", "DURATION:PT1H",
      "RRULE:FREQ=DAILY;INTERVAL=3;UNTIL=20270131T230000Z"])
case("daily-byhour-bysetpos-negative", W("2027-05-01", "2027-06-01"),
     ["DTSTART;TZID=America/New_York:20270503T170000", "DURATION:PT1H",
      "RRULE:FREQ=DAILY;BYHOUR=9,13,17;BYSETPOS=-1;COUNT=5"])
case("daily-bysetpos-2-and-minus-2", W("2027-05-01", "2027-06-01"),
     ["DTSTART;TZID=America/New_York:20270503T083000", "DURATION:PT15M",
      "RRULE:FREQ=DAILY;BYHOUR=8,10,12,14;BYMINUTE=0,30;BYSETPOS=2,-2;COUNT=6"])
case("daily-bysecond-count-6", W("2027-05-01", "2027-06-01"),
     ["DTSTART:20270503T120000Z", "DURATION:PT10S", "RRULE:FREQ=DAILY;BYSECOND=0,30;COUNT=6"])
case("daily-count-1", W("2027-05-01", "2027-06-01"),
     ["DTSTART;TZID=America/New_York:20270503T120000", "DURATION:PT1H", "RRULE:FREQ=DAILY;COUNT=1"])
case("daily-unbounded-from-1990", W("2027-03-01", "2027-03-15"),
     ["DTSTART;TZID=Europe/Berlin:19900101T080000", "DTEND;TZID=Europe/Berlin:19900101T083000",
      "RRULE:FREQ=DAILY"])

# ---- WEEKLY
case("weekly-byday-count-12-sydney", W("2027-01-01", "2027-03-01"),
     ["DTSTART;TZID=Australia/Sydney:20270104T100000", "DURATION:PT1H",
      "RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=12"])
case("weekly-interval-3-until-utc", W("2027-01-01", "2027-07-01"),
     ["DTSTART;TZID=Europe/Berlin:20270105T140000", "DURATION:PT1H",
      "RRULE:FREQ=WEEKLY;INTERVAL=3;BYDAY=TU;UNTIL=20270420T120000Z"])
case("weekly-bymonth-limit", W("2027-01-01", "2027-05-01"),
     ["DTSTART;TZID=America/New_York:20270204T090000", "DURATION:PT1H",
      "RRULE:FREQ=WEEKLY;BYMONTH=2,3;BYDAY=TH"])
case("weekly-interval-2-tu-su-wkst-mo", W("2027-08-01", "2027-10-01"),
     ["DTSTART;TZID=Europe/Berlin:20270803T090000", "DURATION:PT1H",
      "RRULE:FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO"])
case("weekly-interval-2-tu-su-wkst-su", W("2027-08-01", "2027-10-01"),
     ["DTSTART;TZID=Europe/Berlin:20270803T090000", "DURATION:PT1H",
      "RRULE:FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU"])
case("weekly-interval-2-mo-fr-wkst-mo", W("2027-08-01", "2027-10-01"),
     ["DTSTART:20270802T150000Z", "DURATION:PT1H", "RRULE:FREQ=WEEKLY;INTERVAL=2;COUNT=6;BYDAY=MO,FR;WKST=MO"])
case("weekly-interval-2-mo-fr-wkst-th", W("2027-08-01", "2027-10-01"),
     ["DTSTART:20270802T150000Z", "DURATION:PT1H", "RRULE:FREQ=WEEKLY;INTERVAL=2;COUNT=6;BYDAY=MO,FR;WKST=TH"])
case("weekly-weekdays-bysetpos-last", W("2027-05-01", "2027-07-01"),
     ["DTSTART;TZID=America/New_York:20270507T160000", "DURATION:PT1H",
      "RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=6"])
case("weekly-byhour-expand", W("2027-05-01", "2027-07-01"),
     ["DTSTART;TZID=America/New_York:20270503T090000", "DURATION:PT1H",
      "RRULE:FREQ=WEEKLY;BYDAY=MO;BYHOUR=9,14;COUNT=6"])
case("weekly-plain-from-dtstart-weekday", W("2027-05-01", "2027-06-15"),
     ["DTSTART;TZID=Asia/Kolkata:20270506T183000", "DURATION:PT45M", "RRULE:FREQ=WEEKLY"])

# ---- MONTHLY
case("monthly-bymonthday-minus-1-count-12", W("2027-01-01", "2028-01-01"),
     ["DTSTART;TZID=Europe/Berlin:20270131T180000", "DURATION:PT1H",
      "RRULE:FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=12"])
case("monthly-bymonthday-31-skips-short-months", W("2027-01-01", "2028-03-01"),
     ["DTSTART;TZID=America/New_York:20270131T090000", "DURATION:PT1H",
      "RRULE:FREQ=MONTHLY;BYMONTHDAY=31;COUNT=8"])
case("monthly-dtstart-31st-no-byrule-skips-short-months", W("2027-01-01", "2028-03-01"),
     ["DTSTART:20270131T150000Z", "DURATION:PT1H", "RRULE:FREQ=MONTHLY;COUNT=7"])
case("monthly-byday-last-friday-count-12", W("2027-01-01", "2028-01-01"),
     ["DTSTART;TZID=America/New_York:20270129T160000", "DURATION:PT1H",
      "RRULE:FREQ=MONTHLY;BYDAY=-1FR;COUNT=12"])
case("monthly-byday-2tu-and-minus-2th", W("2027-01-01", "2027-07-01"),
     ["DTSTART;TZID=Europe/Berlin:20270112T100000", "DURATION:PT1H",
      "RRULE:FREQ=MONTHLY;BYDAY=2TU,-2TH;COUNT=10"])
case("monthly-byday-5th-friday-skips-months", W("2027-01-01", "2028-01-01"),
     ["DTSTART;TZID=America/New_York:20270129T120000", "DURATION:PT1H", "RRULE:FREQ=MONTHLY;BYDAY=5FR"])
case("monthly-bysetpos-first-and-last-weekday", W("2027-01-01", "2027-07-01"),
     ["DTSTART;TZID=Europe/Berlin:20270101T090000", "DURATION:PT1H",
      "RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=1,-1"])
case("monthly-bymonth-limit-quarterly", W("2027-01-01", "2029-01-01"),
     ["DTSTART;TZID=America/New_York:20270101T090000", "DURATION:PT1H",
      "RRULE:FREQ=MONTHLY;BYMONTH=1,4,7,10;BYMONTHDAY=1"])
case("monthly-last-sunday-via-negative-bymonthday", W("2027-01-01", "2027-10-01"),
     ["DTSTART;TZID=Europe/Berlin:20270131T110000", "DURATION:PT1H",
      "RRULE:FREQ=MONTHLY;BYDAY=SU;BYMONTHDAY=-7,-6,-5,-4,-3,-2,-1"])
case("monthly-interval-3-first-monday", W("2027-01-01", "2029-01-01"),
     ["DTSTART;TZID=America/New_York:20270104T090000", "DURATION:PT1H",
      "RRULE:FREQ=MONTHLY;INTERVAL=3;BYDAY=1MO"])
case("monthly-byhour-expand-count-6", W("2027-01-01", "2027-07-01"),
     ["DTSTART;TZID=Asia/Kolkata:20270115T080000", "DURATION:PT1H",
      "RRULE:FREQ=MONTHLY;BYMONTHDAY=15;BYHOUR=8,20;COUNT=6"])
case("monthly-bymonthday-minus-31-only-long-months", W("2027-01-01", "2028-03-01"),
     ["DTSTART:20270101T100000Z", "DURATION:PT1H", "RRULE:FREQ=MONTHLY;BYMONTHDAY=-31;COUNT=7"])

# ---- YEARLY
case("yearly-feb-29-bymonthday-leap-years-only", W("2024-01-01", "2037-01-01"),
     ["DTSTART;TZID=Europe/Berlin:20240229T120000", "DURATION:PT1H",
      "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29"])
case("yearly-dtstart-feb-29-no-byrule-leap-years-only", W("2024-01-01", "2037-01-01"),
     ["DTSTART:20240229T120000Z", "DURATION:PT1H", "RRULE:FREQ=YEARLY"])
case("yearly-byyearday-negative-count-6", W("2027-01-01", "2030-01-01"),
     ["DTSTART:20270923T100000Z", "DURATION:PT1H", "RRULE:FREQ=YEARLY;BYYEARDAY=-1,-100;COUNT=6"])
case("yearly-byyearday-60-across-leap-year", W("2027-01-01", "2030-01-01"),
     ["DTSTART;TZID=America/New_York:20270301T090000", "DURATION:PT1H", "RRULE:FREQ=YEARLY;BYYEARDAY=60"])
case("yearly-byweekno-1-monday-may-fall-in-previous-year", W("2027-01-01", "2032-01-01"),
     ["DTSTART;TZID=Europe/Berlin:20270104T090000", "DURATION:PT1H",
      "RRULE:FREQ=YEARLY;BYWEEKNO=1;BYDAY=MO"])
case("yearly-byweekno-minus-1-thursday", W("2027-01-01", "2031-01-01"),
     ["DTSTART:20271230T120000Z", "DURATION:PT1H", "RRULE:FREQ=YEARLY;BYWEEKNO=-1;BYDAY=TH"])
case("yearly-byweekno-53-only-long-years", W("2020-01-01", "2034-01-01"),
     ["DTSTART;TZID=America/New_York:20201231T090000", "DURATION:PT1H",
      "RRULE:FREQ=YEARLY;BYWEEKNO=53;BYDAY=TH"])
case("yearly-byweekno-2-sunday-wkst-mo", W("2027-01-01", "2030-01-01"),
     ["DTSTART:20270117T100000Z", "DURATION:PT1H", "RRULE:FREQ=YEARLY;BYWEEKNO=2;BYDAY=SU;WKST=MO;COUNT=3"])
case("yearly-byweekno-2-sunday-wkst-su", W("2027-01-01", "2030-01-01"),
     ["DTSTART:20270110T100000Z", "DURATION:PT1H", "RRULE:FREQ=YEARLY;BYWEEKNO=2;BYDAY=SU;WKST=SU;COUNT=3"])
case("yearly-last-sunday-march-october", W("2027-01-01", "2030-01-01"),
     ["DTSTART:20270328T010000Z", "DURATION:PT1H", "RRULE:FREQ=YEARLY;BYMONTH=3,10;BYDAY=-1SU;COUNT=6"])
case("yearly-first-and-last-monday-of-year", W("2027-01-01", "2030-01-01"),
     ["DTSTART;TZID=America/New_York:20270104T090000", "DURATION:PT1H",
      "RRULE:FREQ=YEARLY;BYDAY=1MO,-1MO;COUNT=6"])
case("yearly-fourth-thursday-november", W("2027-01-01", "2032-01-01"),
     ["DTSTART;TZID=America/New_York:20271125T120000", "DURATION:PT3H",
      "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH;COUNT=5"])
case("yearly-last-monday-may-via-bysetpos", W("2027-01-01", "2032-01-01"),
     ["DTSTART;TZID=America/New_York:20270531T100000", "DURATION:PT2H",
      "RRULE:FREQ=YEARLY;BYMONTH=5;BYDAY=MO;BYSETPOS=-1;COUNT=5"])
case("yearly-last-weekday-of-year-bysetpos", W("2027-01-01", "2032-01-01"),
     ["DTSTART;TZID=Europe/Berlin:20271231T150000", "DURATION:PT1H",
      "RRULE:FREQ=YEARLY;BYMONTH=12;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=5"])
case("yearly-byyearday-byhour-expand", W("2027-01-01", "2030-01-01"),
     ["DTSTART:20270101T000000Z", "DURATION:PT30M", "RRULE:FREQ=YEARLY;BYYEARDAY=1,-1;BYHOUR=0,12;COUNT=6"])
case("yearly-interval-2-all-january-sundays", W("2027-01-01", "2032-01-01"),
     ["DTSTART;TZID=America/New_York:20270103T100000", "DURATION:PT1H",
      "RRULE:FREQ=YEARLY;INTERVAL=2;BYMONTH=1;BYDAY=SU;COUNT=10"])
case("yearly-last-day-of-february", W("2027-01-01", "2032-01-01"),
     ["DTSTART;TZID=Europe/Berlin:20270228T120000", "DURATION:PT1H",
      "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=-1;COUNT=5"])
case("yearly-byhour-byminute-bysecond-expand", W("2027-01-01", "2030-01-01"),
     ["DTSTART;TZID=America/New_York:20270704T090015", "DURATION:PT10M",
      "RRULE:FREQ=YEARLY;BYMONTH=7;BYMONTHDAY=4;BYHOUR=9,21;BYMINUTE=0,30;BYSECOND=15;COUNT=8"])
case("yearly-last-friday-of-year-no-bymonth", W("2027-01-01", "2031-01-01"),
     ["DTSTART:20271231T170000Z", "DURATION:PT1H", "RRULE:FREQ=YEARLY;BYDAY=-1FR;COUNT=4"])

# ---- UNTIL variants
case("until-utc-equal-to-last-instance-is-inclusive", W("2027-11-01", "2027-11-15"),
     ["DTSTART;TZID=America/New_York:20271104T090000", "DURATION:PT1H",
      "RRULE:FREQ=DAILY;UNTIL=20271108T140000Z"])
case("until-utc-compared-as-instant-not-wall-time", W("2027-11-01", "2027-11-15"),
     ["DTSTART;TZID=America/New_York:20271104T090000", "DURATION:PT1H",
      "RRULE:FREQ=DAILY;UNTIL=20271108T130000Z"])
case("until-date-all-day-inclusive", W("2027-01-01", "2027-04-01"),
     ["DTSTART;VALUE=DATE:20270206", "DTEND;VALUE=DATE:20270207",
      "RRULE:FREQ=WEEKLY;BYDAY=SA,SU;UNTIL=20270306"])
case("until-floating", W("2027-01-01", "2027-02-01"),
     ["DTSTART:20270110T090000", "DTEND:20270110T100000", "RRULE:FREQ=DAILY;UNTIL=20270114T090000"])
case("until-before-window-gives-nothing", W("2027-03-01", "2027-04-01"),
     ["DTSTART;TZID=Europe/Berlin:20270201T090000", "DURATION:PT1H",
      "RRULE:FREQ=DAILY;UNTIL=20270210T080000Z"])

# ---- DST: America/New_York (2027-03-14 spring forward, 2027-11-07 fall back)
case("dst-ny-daily-0230-in-spring-gap", W("2027-03-10", "2027-03-20"),
     ["DTSTART;TZID=America/New_York:20270312T023000", "DURATION:PT30M", "RRULE:FREQ=DAILY;COUNT=5"])
case("dst-ny-weekly-sunday-0230-in-spring-gap", W("2027-02-20", "2027-04-01"),
     ["DTSTART;TZID=America/New_York:20270228T023000", "DURATION:PT1H", "RRULE:FREQ=WEEKLY;COUNT=4"])
case("dst-ny-dtstart-in-spring-gap", W("2027-03-10", "2027-03-20"),
     ["DTSTART;TZID=America/New_York:20270314T023000", "DURATION:PT1H", "RRULE:FREQ=DAILY;COUNT=3"])
case("dst-ny-daily-0900-across-spring", W("2027-03-10", "2027-03-18"),
     ["DTSTART;TZID=America/New_York:20270310T090000", "DTEND;TZID=America/New_York:20270310T100000",
      "RRULE:FREQ=DAILY"])
case("dst-ny-daily-0130-in-fall-overlap", W("2027-11-01", "2027-11-12"),
     ["DTSTART;TZID=America/New_York:20271105T013000", "DURATION:PT30M", "RRULE:FREQ=DAILY;COUNT=5"])
case("dst-ny-weekly-sunday-0130-in-fall-overlap", W("2027-10-20", "2027-11-30"),
     ["DTSTART;TZID=America/New_York:20271031T013000", "DURATION:PT1H", "RRULE:FREQ=WEEKLY;COUNT=4"])
case("dst-ny-dtstart-ambiguous-fall-back", W("2027-11-01", "2027-11-12"),
     ["DTSTART;TZID=America/New_York:20271107T013000", "DURATION:PT1H", "RRULE:FREQ=DAILY;COUNT=3"])
case("dst-ny-daily-0900-across-fall", W("2027-11-03", "2027-11-11"),
     ["DTSTART;TZID=America/New_York:20271103T090000", "DTEND;TZID=America/New_York:20271103T100000",
      "RRULE:FREQ=DAILY"])
case("dst-ny-duration-p1d-nominal-across-fall", W("2027-11-01", "2027-11-12"),
     ["DTSTART;TZID=America/New_York:20271105T090000", "DURATION:P1D", "RRULE:FREQ=DAILY;COUNT=4"])
case("dst-ny-duration-pt24h-exact-across-fall", W("2027-11-01", "2027-11-12"),
     ["DTSTART;TZID=America/New_York:20271105T090000", "DURATION:PT24H", "RRULE:FREQ=DAILY;COUNT=4"])
case("dst-ny-dtend-next-day-exact-across-spring", W("2027-03-10", "2027-03-20"),
     ["DTSTART;TZID=America/New_York:20270312T090000", "DTEND;TZID=America/New_York:20270313T090000",
      "RRULE:FREQ=DAILY;COUNT=4"])
case("dst-ny-duration-p1dt2h-across-spring", W("2027-03-10", "2027-03-20"),
     ["DTSTART;TZID=America/New_York:20270313T090000", "DURATION:P1DT2H", "RRULE:FREQ=DAILY;COUNT=2"])
case("dst-ny-dtend-exact-2h-on-gap-day", W("2027-03-10", "2027-03-20"),
     ["DTSTART;TZID=America/New_York:20270312T010000", "DTEND;TZID=America/New_York:20270312T030000",
      "RRULE:FREQ=DAILY;COUNT=4"])

# ---- DST: Europe/Berlin (2027-03-28, 2027-10-31)
case("dst-berlin-daily-0230-in-spring-gap", W("2027-03-25", "2027-04-01"),
     ["DTSTART;TZID=Europe/Berlin:20270326T023000", "DURATION:PT30M", "RRULE:FREQ=DAILY;COUNT=5"])
case("dst-berlin-weekly-sunday-0230-in-spring-gap", W("2027-03-01", "2027-04-15"),
     ["DTSTART;TZID=Europe/Berlin:20270314T023000", "DURATION:PT1H", "RRULE:FREQ=WEEKLY;COUNT=4"])
case("dst-berlin-daily-0900-across-spring", W("2027-03-25", "2027-04-01"),
     ["DTSTART;TZID=Europe/Berlin:20270325T090000", "DTEND;TZID=Europe/Berlin:20270325T100000",
      "RRULE:FREQ=DAILY"])
case("dst-berlin-daily-0230-in-fall-overlap", W("2027-10-28", "2027-11-04"),
     ["DTSTART;TZID=Europe/Berlin:20271029T023000", "DURATION:PT30M", "RRULE:FREQ=DAILY;COUNT=5"])
case("dst-berlin-weekly-sunday-0230-in-fall-overlap", W("2027-10-10", "2027-11-30"),
     ["DTSTART;TZID=Europe/Berlin:20271017T023000", "DURATION:PT1H", "RRULE:FREQ=WEEKLY;COUNT=4"])
case("dst-berlin-weekly-0900-across-fall", W("2027-10-01", "2027-11-30"),
     ["DTSTART;TZID=Europe/Berlin:20271020T090000", "DTEND;TZID=Europe/Berlin:20271020T103000",
      "RRULE:FREQ=WEEKLY;BYDAY=WE,SU"])

# ---- DST: Australia/Lord_Howe (30-minute shift; 2027-04-04 back, 2027-10-03 forward)
case("dst-lord-howe-daily-0215-in-spring-gap", W("2027-09-29", "2027-10-07"),
     ["DTSTART;TZID=Australia/Lord_Howe:20271001T021500", "DURATION:PT30M", "RRULE:FREQ=DAILY;COUNT=4"])
case("dst-lord-howe-daily-0145-in-fall-overlap", W("2027-03-30", "2027-04-08"),
     ["DTSTART;TZID=Australia/Lord_Howe:20270402T014500", "DURATION:PT10M", "RRULE:FREQ=DAILY;COUNT=4"])
case("dst-lord-howe-weekly-0900-across-both", W("2027-03-01", "2027-11-01"),
     ["DTSTART;TZID=Australia/Lord_Howe:20270307T090000", "DURATION:PT1H",
      "RRULE:FREQ=WEEKLY;INTERVAL=2"])

# ---- Asia/Kolkata (UTC+05:30, no DST)
case("tz-kolkata-daily-0900-over-western-dst-dates", W("2027-03-12", "2027-03-30"),
     ["DTSTART;TZID=Asia/Kolkata:20270312T090000", "DURATION:PT1H", "RRULE:FREQ=DAILY"])
case("tz-kolkata-weekly-2345-crosses-utc-date", W("2027-10-01", "2027-11-15"),
     ["DTSTART;TZID=Asia/Kolkata:20271003T234500", "DURATION:PT30M", "RRULE:FREQ=WEEKLY"])
case("tz-kolkata-monthly-last-day-0015-previous-utc-day", W("2027-01-01", "2027-07-01"),
     ["DTSTART;TZID=Asia/Kolkata:20270131T001500", "DURATION:PT15M",
      "RRULE:FREQ=MONTHLY;BYMONTHDAY=-1"])

# ---- DST: Australia/Sydney (southern hemisphere; 2027-04-04 back, 2027-10-03 forward)
case("dst-sydney-daily-0230-in-fall-overlap", W("2027-04-01", "2027-04-08"),
     ["DTSTART;TZID=Australia/Sydney:20270402T023000", "DURATION:PT30M", "RRULE:FREQ=DAILY;COUNT=4"])
case("dst-sydney-daily-0230-in-spring-gap", W("2027-09-29", "2027-10-07"),
     ["DTSTART;TZID=Australia/Sydney:20271001T023000", "DURATION:PT30M", "RRULE:FREQ=DAILY;COUNT=4"])
case("dst-sydney-weekly-0900-across-both", W("2027-03-01", "2027-11-01"),
     ["DTSTART;TZID=Australia/Sydney:20270307T090000", "DTEND;TZID=Australia/Sydney:20270307T100000",
      "RRULE:FREQ=WEEKLY;INTERVAL=2"])

# ---- DST: America/Sao_Paulo (historic midnight transitions, 2018-11-04 and 2019-02-17)
case("dst-sao-paulo-daily-0030-in-midnight-gap-2018", W("2018-11-01", "2018-11-08"),
     ["DTSTART;TZID=America/Sao_Paulo:20181102T003000", "DURATION:PT1H", "RRULE:FREQ=DAILY;COUNT=5"])
case("dst-sao-paulo-daily-2330-in-overlap-2019", W("2019-02-12", "2019-02-20"),
     ["DTSTART;TZID=America/Sao_Paulo:20190214T233000", "DURATION:PT20M", "RRULE:FREQ=DAILY;COUNT=5"])

# ---- DST dates do not move all-day or floating events
case("allday-daily-across-ny-dst-date", W("2027-03-12", "2027-03-17"),
     ["DTSTART;VALUE=DATE:20270312", "DTEND;VALUE=DATE:20270313", "RRULE:FREQ=DAILY;COUNT=5"])
case("floating-daily-0230-on-dst-dates", W("2027-03-12", "2027-03-17"),
     ["DTSTART:20270312T023000", "DTEND:20270312T033000", "RRULE:FREQ=DAILY;COUNT=5"])

# ---- EXDATE
case("exdate-tzid-two-values", W("2027-06-01", "2027-06-15"),
     ["DTSTART;TZID=America/New_York:20270601T090000", "DURATION:PT1H", "RRULE:FREQ=DAILY;COUNT=10",
      "EXDATE;TZID=America/New_York:20270603T090000,20270607T090000"])
case("exdate-utc-value-matches-zoned-instance-after-dst", W("2027-11-01", "2027-11-15"),
     ["DTSTART;TZID=America/New_York:20271104T090000", "DURATION:PT1H", "RRULE:FREQ=DAILY;COUNT=8",
      "EXDATE:20271105T130000Z,20271109T140000Z"])
case("exdate-utc-value-with-wrong-offset-matches-nothing", W("2027-11-01", "2027-11-15"),
     ["DTSTART;TZID=America/New_York:20271104T090000", "DURATION:PT1H", "RRULE:FREQ=DAILY;COUNT=8",
      "EXDATE:20271109T130000Z"])
case("exdate-other-tzid-same-instant", W("2027-06-01", "2027-06-15"),
     ["DTSTART;TZID=America/New_York:20270601T090000", "DURATION:PT1H", "RRULE:FREQ=DAILY;COUNT=6",
      "EXDATE;TZID=Europe/London:20270602T140000"])
case("exdate-excludes-dtstart", W("2027-06-01", "2027-06-15"),
     ["DTSTART;TZID=Europe/Berlin:20270601T090000", "DURATION:PT1H", "RRULE:FREQ=DAILY;COUNT=5",
      "EXDATE;TZID=Europe/Berlin:20270601T090000"])
case("exdate-multiple-properties", W("2027-06-01", "2027-06-30"),
     ["DTSTART;TZID=Europe/Berlin:20270601T090000", "DURATION:PT1H", "RRULE:FREQ=WEEKLY;BYDAY=TU,TH;COUNT=8",
      "EXDATE;TZID=Europe/Berlin:20270603T090000", "EXDATE:20270615T070000Z",
      "EXDATE;TZID=Europe/Berlin:20270622T090000"])
case("exdate-long-list-folded", W("2027-06-01", "2027-07-01"),
     ["DTSTART;TZID=America/New_York:20270601T083000", "DURATION:PT45M", "RRULE:FREQ=DAILY;COUNT=30",
      "EXDATE;TZID=America/New_York:20270602T083000,20270604T083000,20270606T083000,"
      "20270608T083000,20270610T083000,20270612T083000,20270614T083000,20270616T083000,"
      "20270618T083000,20270620T083000"])
case("exdate-ambiguous-fall-back-time-first-occurrence", W("2027-11-01", "2027-11-12"),
     ["DTSTART;TZID=America/New_York:20271105T013000", "DURATION:PT30M", "RRULE:FREQ=DAILY;COUNT=5",
      "EXDATE;TZID=America/New_York:20271107T013000"])
case("exdate-same-day-other-time-matches-nothing", W("2027-06-01", "2027-06-15"),
     ["DTSTART;TZID=America/New_York:20270601T090000", "DURATION:PT1H", "RRULE:FREQ=DAILY;COUNT=4",
      "EXDATE;TZID=America/New_York:20270602T100000"])
case("exdate-all-day-dates", W("2027-06-01", "2027-06-15"),
     ["DTSTART;VALUE=DATE:20270601", "DTEND;VALUE=DATE:20270602", "RRULE:FREQ=DAILY;COUNT=7",
      "EXDATE;VALUE=DATE:20270602,20270605"])
case("exdate-floating", W("2027-06-01", "2027-06-15"),
     ["DTSTART:20270601T090000", "DTEND:20270601T100000", "RRULE:FREQ=DAILY;COUNT=5",
      "EXDATE:20270602T090000,20270604T090000"])

# ---- RDATE
case("rdate-tzid-datetimes-use-master-duration", W("2027-06-01", "2027-07-01"),
     ["DTSTART;TZID=Europe/Berlin:20270601T090000", "DTEND;TZID=Europe/Berlin:20270601T103000",
      "RRULE:FREQ=WEEKLY;COUNT=3", "RDATE;TZID=Europe/Berlin:20270603T140000,20270625T080000"])
case("rdate-utc-values-on-zoned-series", W("2027-06-01", "2027-07-01"),
     ["DTSTART;TZID=America/New_York:20270601T090000", "DURATION:PT1H", "RRULE:FREQ=WEEKLY;COUNT=3",
      "RDATE:20270602T200000Z,20270610T000000Z"])
case("rdate-duplicate-of-rrule-instance-counted-once", W("2027-06-01", "2027-07-01"),
     ["DTSTART;TZID=America/New_York:20270601T090000", "DURATION:PT1H", "RRULE:FREQ=WEEKLY;COUNT=3",
      "RDATE;TZID=America/New_York:20270608T090000", "RDATE:20270615T130000Z"])
case("rdate-period-explicit-end", W("1996-12-25", "1997-01-10"),
     ["DTSTART:19961228T180000Z", "DTEND:19961228T190000Z", "RRULE:FREQ=WEEKLY;COUNT=2",
      "RDATE;VALUE=PERIOD:19970101T180000Z/19970102T070000Z"])
case("rdate-period-start-and-duration", W("2027-06-01", "2027-07-01"),
     ["DTSTART;TZID=Europe/Berlin:20270601T090000", "DURATION:PT1H", "RRULE:FREQ=WEEKLY;COUNT=2",
      "RDATE;VALUE=PERIOD:20270603T120000Z/PT3H30M,20270620T230000Z/PT45M"])
case("rdate-period-with-tzid", W("2027-06-01", "2027-07-01"),
     ["DTSTART;TZID=Europe/Berlin:20270601T090000", "DURATION:PT1H", "RRULE:FREQ=WEEKLY;COUNT=2",
      "RDATE;VALUE=PERIOD;TZID=Europe/Berlin:20270604T100000/20270604T113000"])
case("rdate-only-no-rrule", W("2027-06-01", "2027-07-01"),
     ["DTSTART;TZID=Asia/Kolkata:20270601T100000", "DURATION:PT2H",
      "RDATE;TZID=Asia/Kolkata:20270605T100000,20270611T153000,20270630T230000"])
case("rdate-all-day-dates", W("2027-06-01", "2027-07-01"),
     ["DTSTART;VALUE=DATE:20270601", "DTEND;VALUE=DATE:20270602", "RRULE:FREQ=WEEKLY;COUNT=3",
      "RDATE;VALUE=DATE:20270604,20270620"])
case("rdate-floating", W("2027-06-01", "2027-07-01"),
     ["DTSTART:20270601T090000", "DURATION:PT1H", "RRULE:FREQ=WEEKLY;COUNT=2",
      "RDATE:20270603T180000,20270616T070000"])
case("rdate-with-nominal-duration-on-dst-day", W("2027-03-01", "2027-04-01"),
     ["DTSTART;TZID=America/New_York:20270306T090000", "DURATION:P1D",
      "RDATE;TZID=America/New_York:20270313T090000,20270320T090000"])

# ---- EXDATE + RDATE combinations
case("exdate-and-rdate-together", W("2027-06-01", "2027-07-01"),
     ["DTSTART;TZID=America/New_York:20270601T090000", "DURATION:PT1H", "RRULE:FREQ=WEEKLY;COUNT=4",
      "EXDATE;TZID=America/New_York:20270608T090000", "RDATE;TZID=America/New_York:20270609T110000"])
case("exdate-matches-rdate-exdate-wins", W("2027-06-01", "2027-07-01"),
     ["DTSTART;TZID=America/New_York:20270601T090000", "DURATION:PT1H", "RRULE:FREQ=WEEKLY;COUNT=2",
      "RDATE;TZID=America/New_York:20270603T090000,20270605T090000",
      "EXDATE;TZID=America/New_York:20270603T090000"])
case("exdate-matches-rdate-period-start", W("2027-06-01", "2027-07-01"),
     ["DTSTART:20270601T090000Z", "DURATION:PT1H", "RRULE:FREQ=WEEKLY;COUNT=2",
      "RDATE;VALUE=PERIOD:20270603T120000Z/20270603T150000Z,20270604T120000Z/PT2H",
      "EXDATE:20270603T120000Z"])
case("exdate-matches-rdate-all-day", W("2027-06-01", "2027-07-01"),
     ["DTSTART;VALUE=DATE:20270601", "RRULE:FREQ=WEEKLY;COUNT=2",
      "RDATE;VALUE=DATE:20270603,20270605", "EXDATE;VALUE=DATE:20270605,20270608"])

# ---- RECURRENCE-ID overrides
RID_MASTER = ["DTSTART;TZID=America/New_York:20270601T090000", "DTEND;TZID=America/New_York:20270601T100000",
              "RRULE:FREQ=DAILY;COUNT=7"]
case("rid-moved-later-same-day", W("2027-06-01", "2027-06-15"),
     RID_MASTER,
     ["RECURRENCE-ID;TZID=America/New_York:20270603T090000", "DTSTART;TZID=America/New_York:20270603T150000",
      "DTEND;TZID=America/New_York:20270603T163000", "SEQUENCE:1"])
case("rid-moved-to-other-day", W("2027-06-01", "2027-06-15"),
     RID_MASTER,
     ["RECURRENCE-ID;TZID=America/New_York:20270602T090000", "DTSTART;TZID=America/New_York:20270610T120000",
      "DTEND;TZID=America/New_York:20270610T130000", "SEQUENCE:1"])
case("rid-moved-out-of-window", W("2027-06-01", "2027-06-05"),
     RID_MASTER,
     ["RECURRENCE-ID;TZID=America/New_York:20270603T090000", "DTSTART;TZID=America/New_York:20270620T090000",
      "DTEND;TZID=America/New_York:20270620T100000", "SEQUENCE:1"])
case("rid-moved-into-window", W("2027-06-01", "2027-06-05"),
     RID_MASTER,
     ["RECURRENCE-ID;TZID=America/New_York:20270607T090000", "DTSTART;TZID=America/New_York:20270601T180000",
      "DTEND;TZID=America/New_York:20270601T190000", "SEQUENCE:1"])
case("rid-cancelled", W("2027-06-01", "2027-06-15"),
     RID_MASTER,
     ["RECURRENCE-ID;TZID=America/New_York:20270604T090000", "DTSTART;TZID=America/New_York:20270604T090000",
      "DTEND;TZID=America/New_York:20270604T100000", "STATUS:CANCELLED", "SEQUENCE:1"])
case("rid-thisandfuture-shift-and-new-duration", W("2027-06-01", "2027-06-15"),
     RID_MASTER,
     ["RECURRENCE-ID;RANGE=THISANDFUTURE;TZID=America/New_York:20270604T090000",
      "DTSTART;TZID=America/New_York:20270604T113000", "DTEND;TZID=America/New_York:20270604T120000",
      "SEQUENCE:1"])
case("rid-thisandfuture-skips-instances-with-own-override", W("2027-06-01", "2027-06-15"),
     ["DTSTART;TZID=Europe/Berlin:20270601T090000", "DTEND;TZID=Europe/Berlin:20270601T100000",
      "RRULE:FREQ=DAILY;COUNT=8"],
     ["RECURRENCE-ID;TZID=Europe/Berlin;RANGE=THISANDFUTURE:20270603T090000",
      "DTSTART;TZID=Europe/Berlin:20270603T080000", "DTEND;TZID=Europe/Berlin:20270603T083000", "SEQUENCE:1"],
     ["RECURRENCE-ID;TZID=Europe/Berlin:20270605T090000",
      "DTSTART;TZID=Europe/Berlin:20270605T170000", "DTEND;TZID=Europe/Berlin:20270605T180000", "SEQUENCE:2"],
     ["RECURRENCE-ID;TZID=Europe/Berlin:20270607T090000",
      "DTSTART;TZID=Europe/Berlin:20270607T090000", "DTEND;TZID=Europe/Berlin:20270607T100000",
      "STATUS:CANCELLED", "SEQUENCE:2"])
case("rid-override-before-master-in-file", W("2027-06-01", "2027-06-15"),
     ["RECURRENCE-ID;TZID=America/New_York:20270605T090000", "DTSTART;TZID=America/New_York:20270605T070000",
      "DTEND;TZID=America/New_York:20270605T073000", "SEQUENCE:1"],
     RID_MASTER)
case("rid-utc-value-for-zoned-master", W("2027-06-01", "2027-06-15"),
     RID_MASTER,
     ["RECURRENCE-ID:20270606T130000Z", "DTSTART:20270606T200000Z", "DTEND:20270606T210000Z", "SEQUENCE:1"])
case("rid-override-with-duration", W("2027-06-01", "2027-06-15"),
     RID_MASTER,
     ["RECURRENCE-ID;TZID=America/New_York:20270602T090000", "DTSTART;TZID=America/New_York:20270602T090000",
      "DURATION:PT3H15M", "SEQUENCE:1"])
case("rid-with-exdate-on-another-instance", W("2027-06-01", "2027-06-15"),
     RID_MASTER + ["EXDATE;TZID=America/New_York:20270603T090000"],
     ["RECURRENCE-ID;TZID=America/New_York:20270605T090000", "DTSTART;TZID=America/New_York:20270605T100000",
      "DTEND;TZID=America/New_York:20270605T110000", "SEQUENCE:1"])
case("rid-overrides-an-rdate-instance", W("2027-06-01", "2027-07-01"),
     ["DTSTART;TZID=Europe/Berlin:20270601T090000", "DURATION:PT1H", "RRULE:FREQ=WEEKLY;COUNT=3",
      "RDATE;TZID=Europe/Berlin:20270604T150000"],
     ["RECURRENCE-ID;TZID=Europe/Berlin:20270604T150000", "DTSTART;TZID=Europe/Berlin:20270604T160000",
      "DTEND;TZID=Europe/Berlin:20270604T163000", "SEQUENCE:1"])
case("rid-exdate-rdate-moved-and-cancelled-combined", W("2027-06-01", "2027-07-01"),
     ["DTSTART;TZID=America/New_York:20270601T090000", "DURATION:PT1H", "RRULE:FREQ=WEEKLY;BYDAY=TU,TH;COUNT=8",
      "EXDATE;TZID=America/New_York:20270608T090000", "RDATE;TZID=America/New_York:20270612T100000"],
     ["RECURRENCE-ID;TZID=America/New_York:20270610T090000", "DTSTART;TZID=America/New_York:20270611T090000",
      "DTEND;TZID=America/New_York:20270611T100000", "SEQUENCE:1"],
     ["RECURRENCE-ID;TZID=America/New_York:20270617T090000", "DTSTART;TZID=America/New_York:20270617T090000",
      "DTEND;TZID=America/New_York:20270617T100000", "STATUS:CANCELLED", "SEQUENCE:1"])
case("rid-all-day-moved", W("2027-06-01", "2027-07-01"),
     ["DTSTART;VALUE=DATE:20270601", "DTEND;VALUE=DATE:20270602", "RRULE:FREQ=WEEKLY;COUNT=4"],
     ["RECURRENCE-ID;VALUE=DATE:20270608", "DTSTART;VALUE=DATE:20270610", "DTEND;VALUE=DATE:20270612",
      "SEQUENCE:1"])
case("rid-all-day-cancelled", W("2027-06-01", "2027-07-01"),
     ["DTSTART;VALUE=DATE:20270601", "DTEND;VALUE=DATE:20270602", "RRULE:FREQ=WEEKLY;COUNT=4"],
     ["RECURRENCE-ID;VALUE=DATE:20270615", "DTSTART;VALUE=DATE:20270615", "DTEND;VALUE=DATE:20270616",
      "STATUS:CANCELLED", "SEQUENCE:1"])
case("rid-all-day-thisandfuture", W("2027-06-01", "2027-07-15"),
     ["DTSTART;VALUE=DATE:20270601", "DTEND;VALUE=DATE:20270602", "RRULE:FREQ=WEEKLY;COUNT=5"],
     ["RECURRENCE-ID;VALUE=DATE;RANGE=THISANDFUTURE:20270615", "DTSTART;VALUE=DATE:20270616",
      "DTEND;VALUE=DATE:20270618", "SEQUENCE:1"])
case("rid-floating-moved", W("2027-06-01", "2027-06-15"),
     ["DTSTART:20270601T090000", "DTEND:20270601T100000", "RRULE:FREQ=DAILY;COUNT=5"],
     ["RECURRENCE-ID:20270603T090000", "DTSTART:20270603T140000", "DTEND:20270603T143000", "SEQUENCE:1"])

# ---- DTEND / DURATION / default duration
case("duration-pt1h30m", W("2027-06-01", "2027-06-15"),
     ["DTSTART;TZID=Europe/Berlin:20270601T090000", "DURATION:PT1H30M", "RRULE:FREQ=DAILY;COUNT=3"])
case("dtend-in-other-tzid", W("2027-06-01", "2027-06-15"),
     ["DTSTART;TZID=America/New_York:20270601T090000", "DTEND;TZID=Europe/London:20270601T153000",
      "RRULE:FREQ=DAILY;COUNT=3"])
case("dtend-utc-with-zoned-start", W("2027-06-01", "2027-06-15"),
     ["DTSTART;TZID=Europe/Berlin:20270601T090000", "DTEND:20270601T080000Z", "RRULE:FREQ=DAILY;COUNT=3"])
case("timed-no-dtend-no-duration-zero-length", W("2027-06-01", "2027-06-15"),
     ["DTSTART;TZID=Europe/Berlin:20270601T090000", "RRULE:FREQ=DAILY;COUNT=3"])
case("allday-no-dtend-no-duration-one-day", W("2027-06-01", "2027-06-15"),
     ["DTSTART;VALUE=DATE:20270601", "RRULE:FREQ=DAILY;INTERVAL=2;COUNT=3"])
case("allday-duration-p1d", W("2027-06-01", "2027-06-15"),
     ["DTSTART;VALUE=DATE:20270601", "DURATION:P1D", "RRULE:FREQ=WEEKLY;COUNT=2"])
case("allday-duration-p1w", W("2027-06-01", "2027-08-01"),
     ["DTSTART;VALUE=DATE:20270607", "DURATION:P1W", "RRULE:FREQ=MONTHLY;BYDAY=1MO;COUNT=2"])
case("allday-multi-day-straddles-window-start", W("2027-06-03", "2027-06-20"),
     ["DTSTART;VALUE=DATE:20270601", "DTEND;VALUE=DATE:20270604", "RRULE:FREQ=WEEKLY;COUNT=4"])
case("floating-no-dtend-zero-length", W("2027-06-01", "2027-06-15"),
     ["DTSTART:20270601T093000", "RRULE:FREQ=DAILY;COUNT=3"])
case("floating-duration-pt2h", W("2027-06-01", "2027-06-15"),
     ["DTSTART:20270601T230000", "DURATION:PT2H", "RRULE:FREQ=DAILY;COUNT=3"])

# ---- Floating and all-day recurrences
case("floating-daily-count", W("2027-06-01", "2027-06-15"),
     ["DTSTART:20270601T080000", "DTEND:20270601T090000", "RRULE:FREQ=DAILY;COUNT=4"])
case("floating-weekly-byday", W("2027-06-01", "2027-07-01"),
     ["DTSTART:20270601T180000", "DTEND:20270601T193000", "RRULE:FREQ=WEEKLY;BYDAY=TU,TH"])
case("floating-monthly-bysetpos-last-weekday", W("2027-01-01", "2027-07-01"),
     ["DTSTART:20270129T170000", "DTEND:20270129T180000", "RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1"])
case("allday-daily-count-5", W("2027-06-01", "2027-06-15"),
     ["DTSTART;VALUE=DATE:20270601", "DTEND;VALUE=DATE:20270602", "RRULE:FREQ=DAILY;COUNT=5"])
case("allday-yearly-feb-29-birthday", W("2024-01-01", "2034-01-01"),
     ["DTSTART;VALUE=DATE:20240229", "DTEND;VALUE=DATE:20240301", "RRULE:FREQ=YEARLY"])
case("allday-monthly-last-day", W("2027-01-01", "2027-07-01"),
     ["DTSTART;VALUE=DATE:20270131", "DTEND;VALUE=DATE:20270201", "RRULE:FREQ=MONTHLY;BYMONTHDAY=-1"])
case("allday-yearly-byweekno-byday", W("2027-01-01", "2030-01-01"),
     ["DTSTART;VALUE=DATE:20270104", "DTEND;VALUE=DATE:20270109", "RRULE:FREQ=YEARLY;BYWEEKNO=1;BYDAY=MO"])

# ---- Non-IANA TZIDs with VTIMEZONE (expectations from the equivalent IANA zone)
case("vtimezone-custom-eastern-daily-0900-across-spring", W("2027-03-10", "2027-03-18"),
     ["DTSTART;TZID=Custom Eastern:20270310T090000", "DTEND;TZID=Custom Eastern:20270310T100000",
      "RRULE:FREQ=DAILY;COUNT=7"],
     tz=[CUSTOM_EASTERN], equiv={"Custom Eastern": NY})
case("vtimezone-custom-eastern-daily-0230-in-spring-gap", W("2027-03-10", "2027-03-18"),
     ["DTSTART;TZID=Custom Eastern:20270312T023000", "DURATION:PT30M", "RRULE:FREQ=DAILY;COUNT=4"],
     tz=[CUSTOM_EASTERN], equiv={"Custom Eastern": NY})
case("vtimezone-custom-eastern-weekly-across-fall-with-exdate", W("2027-10-01", "2027-12-01"),
     ["DTSTART;TZID=Custom Eastern:20271020T163000", "DURATION:PT1H", "RRULE:FREQ=WEEKLY;COUNT=6",
      "EXDATE;TZID=Custom Eastern:20271103T163000"],
     tz=[CUSTOM_EASTERN], equiv={"Custom Eastern": NY})
case("vtimezone-outlook-style-quoted-tzid", W("2027-10-25", "2027-11-15"),
     [f'DTSTART;TZID="{OUTLOOK_EASTERN_ID}":20271101T090000',
      f'DTEND;TZID="{OUTLOOK_EASTERN_ID}":20271101T093000',
      "RRULE:FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;COUNT=8"],
     tz=[OUTLOOK_EASTERN], equiv={OUTLOOK_EASTERN_ID: NY})
case("vtimezone-w-europe-standard-time-weekly-across-fall", W("2027-10-01", "2027-12-01"),
     ["DTSTART;TZID=W. Europe Standard Time:20271018T100000",
      "DTEND;TZID=W. Europe Standard Time:20271018T110000", "RRULE:FREQ=WEEKLY;BYDAY=MO,TH;COUNT=8"],
     tz=[W_EUROPE], equiv={"W. Europe Standard Time": BERLIN})
case("vtimezone-india-standard-time-fixed-offset", W("2027-03-01", "2027-04-15"),
     ["DTSTART;TZID=India Standard Time:20270301T093000", "DURATION:PT1H", "RRULE:FREQ=WEEKLY;COUNT=6"],
     tz=[INDIA], equiv={"India Standard Time": KOLKATA})

# ---- Window edges (half-open, overlap semantics)
case("window-instance-ending-at-window-start-excluded", W("2027-06-02T10:00:00", "2027-06-04T10:00:00"),
     ["DTSTART:20270601T090000Z", "DURATION:PT1H", "RRULE:FREQ=DAILY;COUNT=5"])
case("window-instance-starting-at-window-end-excluded", W("2027-06-01T09:30:00", "2027-06-03T09:00:00"),
     ["DTSTART:20270601T090000Z", "DURATION:PT1H", "RRULE:FREQ=DAILY;COUNT=5"])
case("window-instance-straddling-window-start-included", W("2027-06-02T09:30:00", "2027-06-03T09:30:00"),
     ["DTSTART:20270601T090000Z", "DURATION:PT1H", "RRULE:FREQ=DAILY;COUNT=5"])
case("window-between-instances-empty", W("2027-06-01T10:00:00", "2027-06-02T09:00:00"),
     ["DTSTART:20270601T090000Z", "DURATION:PT1H", "RRULE:FREQ=DAILY;COUNT=5"])
case("window-all-day-straddling", W("2027-06-02T12:00:00", "2027-06-03T12:00:00"),
     ["DTSTART;VALUE=DATE:20270601", "DTEND;VALUE=DATE:20270602", "RRULE:FREQ=DAILY;COUNT=5"])

# ---- Folding and text
case("fold-long-utf8-summary-and-description", W("2027-06-01", "2027-06-08"),
     ["SUMMARY:Réunion d’équipe — Überprüfung der Quartalsziele / 四半期目標のレビュー / "
      "Revisión trimestral 🗓️ with a deliberately long title",
      "DESCRIPTION:Line one\\nLine two with escaped \\; semicolon and \\, comma. "
      "Ça continue: naïve café façade — ß ẞ ø Ø å Å — 日本語のテキスト — emoji 👩‍💻 end.",
      "DTSTART;TZID=Europe/Berlin:20270601T090000", "DURATION:PT1H", "RRULE:FREQ=DAILY;COUNT=3"])
case("fold-inside-property-name-and-parameters", W("2027-06-01", "2027-06-15"),
     ["DTST" + FOLD + "ART;TZID=America/" + FOLD + "New_York:20270601T0900" + FOLD + "00",
      "DUR" + FOLD + "ATION:PT1" + FOLD + "H",
      "RRULE:FREQ=WEEKLY;" + FOLD + "BYDAY=TU," + FOLD + "TH;COUNT=4"])
case("fold-with-htab-continuation", W("2027-06-01", "2027-06-15"),
     ["DTSTART;TZID=Europe/Berlin:" + FOLD_TAB + "20270601T090000", "DURATION:PT30M",
      "RRULE:FREQ=DAILY;" + FOLD_TAB + "INTERVAL=2;COUNT=4"])
case("fold-long-rrule-line", W("2027-01-01", "2027-04-01"),
     ["DTSTART;TZID=America/New_York:20270101T120000", "DURATION:PT1H",
      "RRULE:FREQ=MONTHLY;BYMONTHDAY=1,3,5,7,9,11,13,15,17,19,21,23,25,27,29,31;"
      "BYDAY=MO,TU,WE,TH,FR;BYMONTH=1,2,3;COUNT=30"])
case("lowercase-property-and-parameter-names", W("2027-06-01", "2027-06-15"),
     ["dtstart;tzid=Europe/Berlin:20270601T090000", "duration:PT1H", "rrule:FREQ=DAILY;COUNT=3",
      "exdate;tzid=Europe/Berlin:20270602T090000"])
case("ignored-properties-transp-status-attendee", W("2027-06-01", "2027-06-15"),
     ["DTSTART;TZID=America/New_York:20270601T090000", "DTEND;TZID=America/New_York:20270601T100000",
      "RRULE:FREQ=DAILY;COUNT=3", "TRANSP:TRANSPARENT", "STATUS:TENTATIVE", "CLASS:PRIVATE",
      "ORGANIZER;CN=Organizer:mailto:organizer@example.com",
      "ATTENDEE;CN=\"Doe, Jane\";ROLE=REQ-PARTICIPANT;PARTSTAT=DECLINED;RSVP=TRUE:mailto:jane@example.com",
      "ATTENDEE;CN=John Smith;PARTSTAT=ACCEPTED:mailto:john@example.com",
      "X-KAIROS-UNKNOWN;X-PARAM=1:ignored value"])


# --------------------------------------------------------------------------
# Hand-computed expectations (guard against zoneinfo/dateutil surprises)
# --------------------------------------------------------------------------

HAND = {
    # the brief's own example
    "rfc5545-daily-for-10-occurrences": [("1997-09-02T13:00:00Z", "1997-09-02T14:00:00Z")],
    # 02:30 on 2027-03-14 does not exist in New York: offset before the gap (EST) -> 07:30Z = 03:30 EDT
    "dst-ny-daily-0230-in-spring-gap": [
        ("2027-03-12T07:30:00Z", None), ("2027-03-13T07:30:00Z", None), ("2027-03-14T07:30:00Z", None),
        ("2027-03-15T06:30:00Z", None), ("2027-03-16T06:30:00Z", None)],
    # 01:30 on 2027-11-07 occurs twice in New York: first occurrence (EDT) -> 05:30Z
    "dst-ny-daily-0130-in-fall-overlap": [
        ("2027-11-05T05:30:00Z", None), ("2027-11-06T05:30:00Z", None), ("2027-11-07T05:30:00Z", None),
        ("2027-11-08T06:30:00Z", None), ("2027-11-09T06:30:00Z", None)],
    "dst-berlin-daily-0230-in-spring-gap": [
        ("2027-03-26T01:30:00Z", None), ("2027-03-27T01:30:00Z", None), ("2027-03-28T01:30:00Z", None),
        ("2027-03-29T00:30:00Z", None)],
    "dst-berlin-daily-0230-in-fall-overlap": [
        ("2027-10-29T00:30:00Z", None), ("2027-10-30T00:30:00Z", None), ("2027-10-31T00:30:00Z", None),
        ("2027-11-01T01:30:00Z", None)],
    # Lord Howe: +10:30 standard, +11:00 summer; gap 02:00-02:30 on 2027-10-03
    "dst-lord-howe-daily-0215-in-spring-gap": [
        ("2027-09-30T15:45:00Z", None), ("2027-10-01T15:45:00Z", None), ("2027-10-02T15:45:00Z", None),
        ("2027-10-03T15:15:00Z", None)],
    # overlap 01:30-02:00 on 2027-04-04: 01:45 is first taken at +11:00
    "dst-lord-howe-daily-0145-in-fall-overlap": [
        ("2027-04-01T14:45:00Z", None), ("2027-04-02T14:45:00Z", None), ("2027-04-03T14:45:00Z", None),
        ("2027-04-04T15:15:00Z", None)],
    "dst-sao-paulo-daily-0030-in-midnight-gap-2018": [
        ("2018-11-02T03:30:00Z", None), ("2018-11-03T03:30:00Z", None), ("2018-11-04T03:30:00Z", None),
        ("2018-11-05T02:30:00Z", None)],
    "dst-sao-paulo-daily-2330-in-overlap-2019": [
        ("2019-02-15T01:30:00Z", None), ("2019-02-16T01:30:00Z", None), ("2019-02-17T01:30:00Z", None),
        ("2019-02-18T02:30:00Z", None)],
    # P1D is nominal: 09:00 EDT Nov 6 -> 09:00 EST Nov 7 is 25 h; PT24H is exact
    "dst-ny-duration-p1d-nominal-across-fall": [
        ("2027-11-05T13:00:00Z", "2027-11-06T13:00:00Z"), ("2027-11-06T13:00:00Z", "2027-11-07T14:00:00Z"),
        ("2027-11-07T14:00:00Z", "2027-11-08T14:00:00Z")],
    "dst-ny-duration-pt24h-exact-across-fall": [
        ("2027-11-05T13:00:00Z", "2027-11-06T13:00:00Z"), ("2027-11-06T13:00:00Z", "2027-11-07T13:00:00Z")],
    # ISO week 1 of 2030 starts Monday 2029-12-31, of 2031 on Monday 2030-12-30
    "yearly-byweekno-1-monday-may-fall-in-previous-year": [
        ("2027-01-04T08:00:00Z", None), ("2028-01-03T08:00:00Z", None), ("2029-01-01T08:00:00Z", None),
        ("2029-12-31T08:00:00Z", None), ("2030-12-30T08:00:00Z", None)],
    # 2020, 2026 and 2032 are the years in the window with an ISO week 53
    "yearly-byweekno-53-only-long-years": [
        ("2020-12-31T14:00:00Z", None), ("2026-12-31T14:00:00Z", None), ("2032-12-30T14:00:00Z", None)],
    "until-utc-equal-to-last-instance-is-inclusive": [
        ("2027-11-04T13:00:00Z", None), ("2027-11-05T13:00:00Z", None), ("2027-11-06T13:00:00Z", None),
        ("2027-11-07T14:00:00Z", None), ("2027-11-08T14:00:00Z", None)],
}
HAND_COUNTS = {
    "until-utc-equal-to-last-instance-is-inclusive": 5,
    "until-utc-compared-as-instant-not-wall-time": 4,
    "yearly-byweekno-53-only-long-years": 3,
    "until-before-window-gives-nothing": 0,
    "window-between-instances-empty": 0,
    "yearly-feb-29-bymonthday-leap-years-only": 4,
    "allday-yearly-feb-29-birthday": 3,
    "window-instance-ending-at-window-start-excluded": 2,
    "window-instance-starting-at-window-end-excluded": 2,
    "window-instance-straddling-window-start-included": 2,
}


def hand_check(name, expected):
    if name in HAND:
        for i, (s, e) in enumerate(HAND[name]):
            check(i < len(expected), f"{name}: fewer instances than hand-computed")
            check(expected[i]["start"] == s, f"{name}[{i}]: start {expected[i]['start']} != hand {s}")
            if e is not None:
                check(expected[i]["end"] == e, f"{name}[{i}]: end {expected[i]['end']} != hand {e}")
    if name in HAND_COUNTS:
        check(len(expected) == HAND_COUNTS[name], f"{name}: {len(expected)} instances, hand count {HAND_COUNTS[name]}")


def zoneinfo_self_test():
    """RFC 5545 3.3.5's own examples, as zoneinfo resolves them with fold=0."""
    ny = ZoneInfo(NY)
    a = dt.datetime(2007, 11, 4, 1, 30, tzinfo=ny).astimezone(UTC)
    check(a == dt.datetime(2007, 11, 4, 5, 30, tzinfo=UTC), f"3.3.5 overlap example resolves to {a}")
    b = dt.datetime(2007, 3, 11, 2, 30, tzinfo=ny).astimezone(UTC)
    check(b == dt.datetime(2007, 3, 11, 7, 30, tzinfo=UTC), f"3.3.5 gap example resolves to {b}")


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

AVAILABLE_ZONES = zoneinfo.available_timezones()


def build_case(name, source, events, window, timezones=(), equiv=None):
    uid = f"{name}@conformance.kairos.test"
    bodies = [[f"UID:{uid}", DTSTAMP, *ev] for ev in events]
    for b in bodies:
        if not any(x.upper().startswith("SUMMARY") for x in b):
            b.insert(2, f"SUMMARY:{name}")
    ics = build_ics(bodies, list(timezones))
    instances, kind, truncated, _ = expand(ics, window, equiv)
    expected = window_filter(instances, kind, window)
    return {"name": name, "source": source, "ics": ics, "window": {"start": window[0], "end": window[1]},
            "expected": expected}, instances, truncated


def emit(doc) -> str:
    """Stable, diff-friendly JSON: one case field per line, one instance per line."""
    d = json.dumps
    parts = [
        "{" + f'"generator": {d(doc["generator"])}, "python_dateutil": {d(doc["python_dateutil"])}, '
        f'"icalendar": {d(doc["icalendar"])}, "cases": ['
    ]
    cases = []
    for c in doc["cases"]:
        exp = ",\n".join("    " + d(x, ensure_ascii=False) for x in c["expected"])
        cases.append(
            "  {" + f'"name": {d(c["name"])}, "source": {d(c["source"])},\n'
            f'   "ics": {d(c["ics"], ensure_ascii=False)},\n'
            f'   "window": {d(c["window"])},\n'
            f'   "expected": [' + ("\n" + exp + "\n   " if exp else "") + "]}"
        )
    parts.append(",\n".join(cases))
    parts.append("]}")
    return "\n".join(parts) + "\n"


def main() -> int:
    errors: list[str] = []
    try:
        zoneinfo_self_test()
    except CaseError as e:
        errors.append(f"zoneinfo self-test: {e}")
    cases = []
    rfc_report = []
    for c in RFC:
        try:
            events = rfc_events(c)
            built, instances, truncated = build_case(c["name"], "rfc5545 3.8.5.3", events, c["window"])
            default_time = dt.datetime.strptime(c["dtstart"], "%Y%m%dT%H%M%S").time()
            n, open_ended = rfc_cross_check(c["name"], instances, truncated, c["listing"], default_time,
                                            built["expected"])
            rfc_report.append((c["name"], n, open_ended))
            hand_check(c["name"], built["expected"])
            cases.append(built)
        except CaseError as e:
            errors.append(f"{c['name']}: {e}")
    for g in GEN:
        try:
            built, _, _ = build_case(g["name"], "dateutil", g["events"], g["window"], g["tz"], g["equiv"])
            hand_check(g["name"], built["expected"])
            cases.append(built)
        except CaseError as e:
            errors.append(f"{g['name']}: {e}")
    names = [c["name"] for c in cases]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        errors.append(f"duplicate case names: {sorted(dup)}")
    for n in list(HAND) + list(HAND_COUNTS):
        if n not in names:
            errors.append(f"hand check for unknown case {n}")
    if errors:
        for e in errors:
            print("FAIL", e, file=sys.stderr)
        return 1
    doc = {
        "generator": "tests/conformance/generate.py",
        "python_dateutil": importlib.metadata.version("python-dateutil"),
        "icalendar": importlib.metadata.version("icalendar"),
        "cases": cases,
    }
    out = emit(doc)
    check(json.loads(out) == json.loads(json.dumps(doc)), "emitter produced different JSON")
    sys.stdout.buffer.write(out.encode("utf-8"))
    by_source: dict[str, int] = {}
    for c in cases:
        by_source[c["source"]] = by_source.get(c["source"], 0) + 1
    print(
        f"ok: {len(cases)} cases {by_source}; {len(rfc_report)} RFC listings cross-checked "
        f"({sum(1 for r in rfc_report if not r[2])} complete, {sum(1 for r in rfc_report if r[2])} prefix); "
        f"tzdata {importlib.metadata.version('tzdata')}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
