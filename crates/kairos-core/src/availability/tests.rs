//! Named cases (DST both ways, half-hour zones, overnight hours, overrides, mixed zones) and
//! property tests that check every slot against the rules and against a brute-force oracle.

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

use super::*;

/// No busy time.
static NONE: std::sync::LazyLock<Timeline> = std::sync::LazyLock::new(Timeline::default);
use crate::schedule::{DateOverrides, LocalTime, TimeRange, WorkingHours};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn iv(a: &str, b: &str) -> Interval {
    Interval::new(ts(a), ts(b)).unwrap()
}

fn mins(n: i64) -> SignedDuration {
    SignedDuration::from_mins(n)
}

fn schedule(zone: &str, hours: &str) -> Schedule {
    Schedule::new(Zone::parse(zone).unwrap(), serde_json::from_str(hours).unwrap(), DateOverrides::default())
}

const ALL_DAY: &str = r#"{"monday":[{"start":"00:00","end":"24:00"}],"tuesday":[{"start":"00:00","end":"24:00"}],
  "wednesday":[{"start":"00:00","end":"24:00"}],"thursday":[{"start":"00:00","end":"24:00"}],
  "friday":[{"start":"00:00","end":"24:00"}],"saturday":[{"start":"00:00","end":"24:00"}],
  "sunday":[{"start":"00:00","end":"24:00"}]}"#;
const NINE_TO_FIVE: &str = r#"{"monday":[{"start":"09:00","end":"17:00"}],"tuesday":[{"start":"09:00","end":"17:00"}],
  "wednesday":[{"start":"09:00","end":"17:00"}],"thursday":[{"start":"09:00","end":"17:00"}],
  "friday":[{"start":"09:00","end":"17:00"}]}"#;

fn search<'a>(
    base: Option<&'a Schedule>,
    members: &'a [Member<'a>],
    window: Interval,
    duration: i64,
) -> SlotSearch<'a> {
    SlotSearch {
        window,
        duration: mins(duration),
        now: ts("2026-01-01T00:00:00Z"),
        mode: Mode::Collective,
        base,
        base_busy: &NONE,
        members,
        rules: Rules::default(),
        limit: None,
    }
}

fn starts(slots: &[Slot]) -> Vec<String> {
    slots.iter().map(|s| s.interval.start().to_string()).collect()
}

/// The local calendar day in `zone` from midnight to midnight, as a UTC window.
fn local_day(zone: &str, date: &str) -> Interval {
    let tz = Zone::parse(zone).unwrap();
    let d: jiff::civil::Date = date.parse().unwrap();
    let a = d.to_zoned(tz.tz().clone()).unwrap().timestamp();
    let b = d.tomorrow().unwrap().to_zoned(tz.tz().clone()).unwrap().timestamp();
    Interval::new(a, b).unwrap()
}

#[test]
fn new_york_spring_forward_day_has_46_half_hours() {
    let s = schedule("America/New_York", ALL_DAY);
    let slots = search(Some(&s), &[], local_day("America/New_York", "2027-03-14"), 30).find();
    assert_eq!(slots.len(), 46);
    // 01:30 EST is followed directly by 03:00 EDT: consecutive instants, no gap, no overlap.
    assert_eq!(slots[3].interval, iv("2027-03-14T06:30:00Z", "2027-03-14T07:00:00Z"));
    assert_eq!(slots[4].interval, iv("2027-03-14T07:00:00Z", "2027-03-14T07:30:00Z"));
    assert!(slots.windows(2).all(|w| w[0].interval.end() == w[1].interval.start()));
}

#[test]
fn new_york_fall_back_day_has_50_half_hours() {
    let s = schedule("America/New_York", ALL_DAY);
    let slots = search(Some(&s), &[], local_day("America/New_York", "2027-11-07"), 30).find();
    assert_eq!(slots.len(), 50);
    assert_eq!(slots[0].interval.start(), ts("2027-11-07T04:00:00Z"));
    assert_eq!(slots[49].interval.end(), ts("2027-11-08T05:00:00Z"));
}

#[test]
fn nine_to_five_keeps_its_local_hours_across_the_change() {
    let s = schedule("America/New_York", NINE_TO_FIVE);
    let window = iv("2027-11-05T00:00:00Z", "2027-11-09T00:00:00Z");
    let slots = search(Some(&s), &[], window, 60).find();
    // Friday 9:00 EDT (13:00Z) and Monday 9:00 EST (14:00Z); eight hourly slots each day.
    assert_eq!(slots.len(), 16);
    assert_eq!(slots[0].interval.start(), ts("2027-11-05T13:00:00Z"));
    assert_eq!(slots[8].interval.start(), ts("2027-11-08T14:00:00Z"));
}

#[test]
fn berlin_days_shrink_and_grow_with_summer_time() {
    let s = schedule("Europe/Berlin", ALL_DAY);
    assert_eq!(search(Some(&s), &[], local_day("Europe/Berlin", "2027-03-28"), 60).find().len(), 23);
    assert_eq!(search(Some(&s), &[], local_day("Europe/Berlin", "2027-10-31"), 60).find().len(), 25);
}

#[test]
fn lord_howe_shifts_by_thirty_minutes() {
    let s = schedule("Australia/Lord_Howe", ALL_DAY);
    // 2026-10-04: 02:00 (+10:30) jumps to 02:30 (+11:00); the day lasts 23.5 hours.
    let day = local_day("Australia/Lord_Howe", "2026-10-04");
    assert_eq!(day.duration(), SignedDuration::from_mins(23 * 60 + 30));
    let slots = search(Some(&s), &[], day, 30).find();
    assert_eq!(slots.len(), 47);
    assert_eq!(slots[0].interval.start(), ts("2026-10-03T13:30:00Z"));
    // 2027-04-04: 02:00 (+11:00) falls back to 01:30 (+10:30); the day lasts 24.5 hours.
    let slots = search(Some(&s), &[], local_day("Australia/Lord_Howe", "2027-04-04"), 30).find();
    assert_eq!(slots.len(), 49);
}

#[test]
fn kolkata_half_hour_offset_puts_nine_am_at_half_past_three_utc() {
    let s = schedule("Asia/Kolkata", NINE_TO_FIVE);
    let slots = search(Some(&s), &[], iv("2026-05-01T00:00:00Z", "2026-05-02T00:00:00Z"), 60).find();
    assert_eq!(starts(&slots).first().map(String::as_str), Some("2026-05-01T03:30:00Z"));
    assert_eq!(slots.len(), 8);
}

#[test]
fn an_overnight_shift_offers_slots_past_midnight() {
    let s = schedule("Europe/Berlin", r#"{"friday": [{"start": "22:00", "end": "02:00"}]}"#);
    let slots = search(Some(&s), &[], iv("2026-05-01T00:00:00Z", "2026-05-04T00:00:00Z"), 60).find();
    assert_eq!(
        starts(&slots),
        ["2026-05-01T20:00:00Z", "2026-05-01T21:00:00Z", "2026-05-01T22:00:00Z", "2026-05-01T23:00:00Z"]
    );
}

#[test]
fn date_overrides_shorten_and_close_days() {
    let mut s = schedule("UTC", NINE_TO_FIVE);
    s.date_overrides.insert(
        "2026-12-24".parse().unwrap(),
        vec![TimeRange::new(LocalTime::parse("09:00").unwrap(), LocalTime::parse("12:00").unwrap()).unwrap()],
    );
    s.date_overrides.insert("2026-12-25".parse().unwrap(), vec![]);
    s.date_overrides.insert(
        "2026-12-26".parse().unwrap(),
        vec![TimeRange::new(LocalTime::parse("10:00").unwrap(), LocalTime::parse("11:00").unwrap()).unwrap()],
    );
    let slots = search(Some(&s), &[], iv("2026-12-24T00:00:00Z", "2026-12-27T00:00:00Z"), 60).find();
    assert_eq!(
        starts(&slots),
        ["2026-12-24T09:00:00Z", "2026-12-24T10:00:00Z", "2026-12-24T11:00:00Z", "2026-12-26T10:00:00Z"]
    );
}

#[test]
fn a_participant_in_another_zone_narrows_the_day_to_the_overlap() {
    let business = schedule("America/New_York", NINE_TO_FIVE);
    let berlin = schedule("Europe/Berlin", NINE_TO_FIVE);
    let members = [Member { schedule: &berlin, busy: &NONE, required: false }];
    // Summer: six hours apart, so 09:00–11:00 in New York.
    let slots = search(Some(&business), &members, iv("2026-06-01T00:00:00Z", "2026-06-02T00:00:00Z"), 30).find();
    assert_eq!(slots.len(), 4);
    assert_eq!(slots[0].interval.start(), ts("2026-06-01T13:00:00Z"));
    // Mid-March 2027 the US has changed its clocks and Europe has not: five hours apart.
    let slots = search(Some(&business), &members, iv("2027-03-15T00:00:00Z", "2027-03-16T00:00:00Z"), 30).find();
    assert_eq!(slots.len(), 6);
}

#[test]
fn busy_time_widened_by_buffers_removes_nearby_slots() {
    let s = schedule("UTC", NINE_TO_FIVE);
    let busy = Timeline::from([iv("2026-05-01T11:00:00Z", "2026-05-01T12:00:00Z")]);
    let members = [Member { schedule: &s, busy: &busy, required: false }];
    let mut q = search(Some(&s), &members, iv("2026-05-01T09:00:00Z", "2026-05-01T14:00:00Z"), 30);
    q.rules.buffer_before = mins(15);
    q.rules.buffer_after = mins(10);
    // A slot needs 15 free minutes before it and 10 after: 10:30 ends too close (10:40 > 11:00-10)
    // and 12:00 starts too soon after (12:00 - 15 < 12:00).
    assert_eq!(
        starts(&q.find()),
        [
            "2026-05-01T09:00:00Z",
            "2026-05-01T09:30:00Z",
            "2026-05-01T10:00:00Z",
            "2026-05-01T12:30:00Z",
            "2026-05-01T13:00:00Z",
            "2026-05-01T13:30:00Z"
        ]
    );
}

#[test]
fn notice_step_and_daily_cap_are_respected() {
    let s = schedule("UTC", NINE_TO_FIVE);
    let booked = [ts("2026-05-04T09:00:00Z"), ts("2026-05-04T10:00:00Z")];
    let zone = Zone::utc();
    let mut q = search(Some(&s), &[], iv("2026-05-01T00:00:00Z", "2026-05-05T00:00:00Z"), 30);
    q.now = ts("2026-05-01T14:50:00Z");
    q.rules.minimum_notice = mins(60);
    q.rules.step = Some(mins(45));
    q.rules.daily_limit = Some(DailyLimit { max: 2, zone: &zone, booked_starts: &booked });
    let got = starts(&q.find());
    // Friday: grid 9:00, 9:45, … the first at or after 15:50 is 15:45+45 = 16:30 (ends 17:00).
    // Monday is full (two bookings already).
    assert_eq!(got, ["2026-05-01T16:30:00Z"]);
}

#[test]
fn any_mode_lists_who_is_free() {
    let a = schedule("UTC", NINE_TO_FIVE);
    let b = schedule("UTC", NINE_TO_FIVE);
    let busy_a = Timeline::from([iv("2026-05-01T09:00:00Z", "2026-05-01T10:00:00Z")]);
    let busy_b = Timeline::from([iv("2026-05-01T09:30:00Z", "2026-05-01T10:30:00Z")]);
    let members = [
        Member { schedule: &a, busy: &busy_a, required: false },
        Member { schedule: &b, busy: &busy_b, required: false },
    ];
    let mut q = search(None, &members, iv("2026-05-01T09:00:00Z", "2026-05-01T11:00:00Z"), 30);
    q.mode = Mode::Any;
    let got: Vec<(String, Vec<usize>)> =
        q.find().into_iter().map(|s| (s.interval.start().to_string(), s.free_members)).collect();
    assert_eq!(
        got,
        vec![
            ("2026-05-01T09:00:00Z".to_string(), vec![1]),
            ("2026-05-01T10:00:00Z".to_string(), vec![0]),
            ("2026-05-01T10:30:00Z".to_string(), vec![0, 1]),
        ]
    );
    q.mode = Mode::Collective;
    assert_eq!(starts(&q.find()), ["2026-05-01T10:30:00Z"]);
}

#[test]
fn in_any_mode_named_people_are_required_and_hosts_are_the_pool() {
    let s = schedule("UTC", NINE_TO_FIVE);
    let host_a_busy = Timeline::from([iv("2026-05-01T09:00:00Z", "2026-05-01T10:00:00Z")]);
    let guest_busy = Timeline::from([iv("2026-05-01T10:00:00Z", "2026-05-01T10:30:00Z")]);
    let members = [
        Member { schedule: &s, busy: &host_a_busy, required: false },
        Member { schedule: &s, busy: &NONE, required: false },
        Member { schedule: &s, busy: &guest_busy, required: true },
    ];
    let mut q = search(None, &members, iv("2026-05-01T09:00:00Z", "2026-05-01T11:00:00Z"), 30);
    q.mode = Mode::Any;
    let got: Vec<(String, Vec<usize>)> =
        q.find().into_iter().map(|s| (s.interval.start().to_string(), s.free_members)).collect();
    // The guest is busy 10:00–10:30 (no slot then, whoever hosts); the slots list hosts only.
    assert_eq!(
        got,
        vec![
            ("2026-05-01T09:00:00Z".to_string(), vec![1]),
            ("2026-05-01T09:30:00Z".to_string(), vec![1]),
            ("2026-05-01T10:30:00Z".to_string(), vec![0, 1]),
        ]
    );
    assert_eq!(q.check(iv("2026-05-01T10:00:00Z", "2026-05-01T10:30:00Z")), Err(Unavailable::Busy { member: Some(2) }));
    assert_eq!(q.check(iv("2026-05-01T09:00:00Z", "2026-05-01T09:30:00Z")), Ok(vec![1]));
    // Everyone required: as collective.
    let all_required = [Member { required: true, ..members[1] }, Member { required: true, ..members[2] }];
    let mut q = search(None, &all_required, iv("2026-05-01T09:00:00Z", "2026-05-01T11:00:00Z"), 30);
    q.mode = Mode::Any;
    assert_eq!(q.find().len(), 3);
}

#[test]
fn check_names_the_member_in_the_way() {
    let s = schedule("UTC", NINE_TO_FIVE);
    let busy = Timeline::from([iv("2026-05-01T10:00:00Z", "2026-05-01T11:00:00Z")]);
    let members =
        [Member { schedule: &s, busy: &NONE, required: false }, Member { schedule: &s, busy: &busy, required: false }];
    let q = search(Some(&s), &members, iv("2026-05-01T00:00:00Z", "2026-05-02T00:00:00Z"), 30);
    assert_eq!(q.check(iv("2026-05-01T10:30:00Z", "2026-05-01T11:00:00Z")), Err(Unavailable::Busy { member: Some(1) }));
    assert_eq!(
        q.check(iv("2026-05-01T16:30:00Z", "2026-05-01T17:30:00Z")),
        Err(Unavailable::OutsideWorkingHours { member: None })
    );
    assert_eq!(q.check(iv("2025-05-01T10:30:00Z", "2025-05-01T11:00:00Z")), Err(Unavailable::InPast));
    assert_eq!(q.check(iv("2026-05-01T11:10:00Z", "2026-05-01T11:40:00Z")), Ok(vec![0, 1]));
}

// ---- properties ----

const ZONES: [&str; 6] =
    ["UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Chatham"];

fn arb_range() -> impl Strategy<Value = TimeRange> {
    (0u16..48, 1u16..48).prop_map(|(start, len)| {
        let s = start * 30;
        let e = (s + len * 30) % (24 * 60 + 30);
        let end = if e == s { (s + 30) % 1440 } else { e.min(1440) };
        TimeRange::new(
            LocalTime::parse(&format!("{:02}:{:02}", s / 60, s % 60)).unwrap(),
            LocalTime::parse(&format!("{:02}:{:02}", end / 60, end % 60)).unwrap(),
        )
        .unwrap_or_else(|_| {
            TimeRange::new(LocalTime::parse("09:00").unwrap(), LocalTime::parse("17:00").unwrap()).unwrap()
        })
    })
}

fn arb_schedule() -> impl Strategy<Value = Schedule> {
    (prop::sample::select(ZONES.to_vec()), prop::collection::vec(prop::collection::vec(arb_range(), 0..3), 7)).prop_map(
        |(zone, days)| {
            let mut hours = WorkingHours::default();
            for (i, ranges) in days.into_iter().enumerate() {
                hours = hours.with_day(jiff::civil::Weekday::from_monday_zero_offset(i as i8).unwrap(), ranges);
            }
            Schedule::new(Zone::parse(zone).unwrap(), hours, DateOverrides::default())
        },
    )
}

const ORIGIN: i64 = 1_798_761_600; // 2027-01-01T00:00:00Z

fn at(minutes: i64) -> Timestamp {
    Timestamp::from_second(ORIGIN + minutes * 60).unwrap()
}

fn arb_busy() -> impl Strategy<Value = Timeline> {
    prop::collection::vec((0i64..14 * 1440, 5i64..300), 0..40)
        .prop_map(|v| v.into_iter().map(|(s, len)| Interval::new(at(s), at(s + len)).unwrap()).collect())
}

#[derive(Debug)]
struct Case {
    base: Option<Schedule>,
    members: Vec<(Schedule, Timeline, bool)>,
    base_busy: Timeline,
    window: (i64, i64),
    duration: i64,
    step: Option<i64>,
    notice: i64,
    now: i64,
    before: i64,
    after: i64,
    daily: Option<(u32, Vec<i64>)>,
    any: bool,
}

fn arb_case() -> impl Strategy<Value = Case> {
    (
        prop::option::of(arb_schedule()),
        prop::collection::vec((arb_schedule(), arb_busy(), any::<bool>()), 0..4),
        arb_busy(),
        (0i64..7 * 1440, 60i64..7 * 1440),
        prop::sample::select(vec![15i64, 30, 45, 60, 90]),
        prop::option::of(prop::sample::select(vec![5i64, 10, 15, 20, 30, 60])),
        (0i64..600, -1440i64..3 * 1440),
        (0i64..30, 0i64..30),
        prop::option::of((1u32..4, prop::collection::vec(0i64..14 * 1440, 0..10))),
        any::<bool>(),
    )
        .prop_map(
            |(base, members, base_busy, (from, len), duration, step, (notice, now), (before, after), daily, any)| {
                Case {
                    base,
                    members,
                    base_busy,
                    window: (from, from + len),
                    duration,
                    step,
                    notice,
                    now,
                    before,
                    after,
                    daily,
                    any,
                }
            },
        )
}

fn run<R>(case: &Case, f: impl FnOnce(&SlotSearch) -> R) -> R {
    let members: Vec<Member> =
        case.members.iter().map(|(s, b, required)| Member { schedule: s, busy: b, required: *required }).collect();
    let utc = Zone::utc();
    let daily_starts: Vec<Timestamp> =
        case.daily.as_ref().map(|(_, v)| v.iter().map(|m| at(*m)).collect()).unwrap_or_default();
    let zone = case.base.as_ref().map(|b| &b.timezone).unwrap_or(&utc);
    let q = SlotSearch {
        window: Interval::new(at(case.window.0), at(case.window.1)).unwrap(),
        duration: mins(case.duration),
        now: at(case.now),
        mode: if case.any { Mode::Any } else { Mode::Collective },
        base: case.base.as_ref(),
        base_busy: &case.base_busy,
        members: &members,
        rules: Rules {
            buffer_before: mins(case.before),
            buffer_after: mins(case.after),
            minimum_notice: mins(case.notice),
            step: case.step.map(mins),
            daily_limit: case.daily.as_ref().map(|(max, _)| DailyLimit {
                max: *max,
                zone,
                booked_starts: &daily_starts,
            }),
        },
        limit: None,
    };
    f(&q)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn every_slot_obeys_every_rule(case in arb_case()) {
        run(&case, |q| {
            let slots = q.find();
            prop_assert!(slots.windows(2).all(|w| w[0].interval.start() < w[1].interval.start()), "sorted and unique");
            for slot in &slots {
                let iv = slot.interval;
                prop_assert_eq!(iv.duration(), q.duration);
                prop_assert!(q.window.contains(&iv), "inside the window");
                prop_assert!(iv.start() >= q.now.checked_add(q.rules.minimum_notice).unwrap(), "respects notice");
                prop_assert!(!slot.free_members.is_empty() || q.members.is_empty());
                // The independent rule check agrees on every member the slot names.
                let checked = q.check(iv);
                prop_assert!(checked.is_ok(), "check rejects a found slot {:?}: {:?}", iv, checked);
                let widened = |b: &Interval| b.widened(q.rules.buffer_after, q.rules.buffer_before);
                prop_assert!(!q.base_busy.iter().any(|b| widened(b).overlaps(&iv)), "clear of base busy time");
                // Everyone listed, and in any mode every required member too, is free and working.
                let required = q.members.iter().enumerate().filter(|(_, m)| q.mode == Mode::Any && m.required).map(|(i, _)| i);
                for m in slot.free_members.iter().copied().chain(required) {
                    let member = &q.members[m];
                    prop_assert!(!member.busy.iter().any(|b| widened(b).overlaps(&iv)), "clear of busy time with buffers");
                    prop_assert!(member.schedule.working_intervals(iv).iter().any(|w| w.contains(&iv)), "inside the member's hours");
                }
                if let Some(base) = q.base {
                    prop_assert!(base.working_intervals(iv).iter().any(|w| w.contains(&iv)), "inside the base hours");
                }
            }
            Ok(())
        })?;
    }

    #[test]
    fn no_bookable_grid_point_is_missed(case in arb_case()) {
        // Oracle: walk every grid point of the combined working intervals by brute force and
        // ask `check`; every point it accepts (inside the window) must be among the slots.
        run(&case, |q| {
            if q.mode == Mode::Any || (q.base.is_none() && q.members.is_empty()) {
                return Ok(());
            }
            let slots: std::collections::BTreeSet<Interval> = q.find().into_iter().map(|s| s.interval).collect();
            let span = q.window.widened(ANCHOR_MARGIN, ANCHOR_MARGIN);
            let mut working = q.base.map(|b| spans_inside(&b.working_intervals(span))).unwrap_or_else(|| vec![Span::inside(&span)]);
            for m in q.members {
                working = interval::intersect(&working, &spans_inside(&m.schedule.working_intervals(span)));
            }
            let step = q.step();
            for w in working.iter().filter_map(|w| w.to_interval()) {
                let mut s = w.start();
                while let Some(iv) = Interval::starting_at(s, q.duration) {
                    if iv.end() > w.end() { break; }
                    if q.window.contains(&iv) && q.check(iv).is_ok() {
                        prop_assert!(slots.contains(&iv), "missed {:?}", iv);
                    }
                    s = s.checked_add(step).unwrap();
                }
            }
            Ok(())
        })?;
    }
}
