//! The words of booking emails and proposal emails: minijinja templates shipped inside the
//! binary, each of which a self-hoster may replace by putting a file of the same name in a
//! folder of their own.
//!
//! Every kind of email has three templates: `<kind>.subject.txt`, `<kind>.txt` and
//! `<kind>.html` (the kinds: `confirmation`, `updated`, `cancelled`, `proposal_invitation`,
//! `proposal_accepted`, `proposal_resolved` and `proposal_cancelled`); the HTML ones extend
//! `layout.html`, so restyling every email is one file.
//! HTML is escaped automatically (a customer's name is whatever they typed); text is not.
//!
//! All templates are compiled and rendered once with a full sample when loaded, so a broken
//! override (a syntax error, a misspelt variable) stops the server at start-up, naming the
//! file, instead of failing each email later. When sending, a value the booking lacks
//! (no notes, no manage link) prints as nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use jiff::{Timestamp, Zoned};
use kairos_core::Zone;
use kairos_core::describe::{describe, zone_label};
use kairos_core::proposal::{Proposal, ProposalMode};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

/// The templates shipped with Kairos, by file name.
const DEFAULTS: [(&str, &str); 22] = [
    ("layout.html", include_str!("../../templates/email/layout.html")),
    ("confirmation.subject.txt", include_str!("../../templates/email/confirmation.subject.txt")),
    ("confirmation.txt", include_str!("../../templates/email/confirmation.txt")),
    ("confirmation.html", include_str!("../../templates/email/confirmation.html")),
    ("updated.subject.txt", include_str!("../../templates/email/updated.subject.txt")),
    ("updated.txt", include_str!("../../templates/email/updated.txt")),
    ("updated.html", include_str!("../../templates/email/updated.html")),
    ("cancelled.subject.txt", include_str!("../../templates/email/cancelled.subject.txt")),
    ("cancelled.txt", include_str!("../../templates/email/cancelled.txt")),
    ("cancelled.html", include_str!("../../templates/email/cancelled.html")),
    ("proposal_invitation.subject.txt", include_str!("../../templates/email/proposal_invitation.subject.txt")),
    ("proposal_invitation.txt", include_str!("../../templates/email/proposal_invitation.txt")),
    ("proposal_invitation.html", include_str!("../../templates/email/proposal_invitation.html")),
    ("proposal_accepted.subject.txt", include_str!("../../templates/email/proposal_accepted.subject.txt")),
    ("proposal_accepted.txt", include_str!("../../templates/email/proposal_accepted.txt")),
    ("proposal_accepted.html", include_str!("../../templates/email/proposal_accepted.html")),
    ("proposal_resolved.subject.txt", include_str!("../../templates/email/proposal_resolved.subject.txt")),
    ("proposal_resolved.txt", include_str!("../../templates/email/proposal_resolved.txt")),
    ("proposal_resolved.html", include_str!("../../templates/email/proposal_resolved.html")),
    ("proposal_cancelled.subject.txt", include_str!("../../templates/email/proposal_cancelled.subject.txt")),
    ("proposal_cancelled.txt", include_str!("../../templates/email/proposal_cancelled.txt")),
    ("proposal_cancelled.html", include_str!("../../templates/email/proposal_cancelled.html")),
];

/// The prefix of the proposal invitation's template files.
const PROPOSAL_INVITATION: &str = "proposal_invitation";

/// Which email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmailKind {
    /// A new booking.
    Confirmation,
    /// A booking moved to another time.
    Updated,
    /// A booking that no longer takes place.
    Cancelled,
}

impl EmailKind {
    pub const ALL: [EmailKind; 3] = [Self::Confirmation, Self::Updated, Self::Cancelled];

    /// The prefix of its template files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Confirmation => "confirmation",
            Self::Updated => "updated",
            Self::Cancelled => "cancelled",
        }
    }
}

/// What a template can say, as the variables of the same names. Times are already phrased
/// for the recipient, in their zone: templates never do time-zone arithmetic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EmailContext {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_name: Option<String>,
    pub title: String,
    /// Start to end in the recipient's zone ([`when`]).
    pub when: String,
    /// For a move: the time it had before ([`when`] of the old interval).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_when: Option<String>,
    /// The recipient's IANA zone, e.g. `America/New_York`.
    pub timezone: String,
    pub host_names: Vec<String>,
    pub participant_names: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancellation_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_name: Option<String>,
    /// Where the recipient can reschedule or cancel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manage_url: Option<String>,
    /// Where a new booking can be made (after a cancellation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub booking_url: Option<String>,
}

impl EmailContext {
    /// A context for a booking of `title` from `start` to `end`, phrased in `zone` (the
    /// recipient's); the other fields start empty.
    pub fn new(title: impl Into<String>, start: Timestamp, end: Timestamp, zone: &Zone) -> Self {
        Self { title: title.into(), when: when(start, end, zone), timezone: zone.name().to_string(), ..Self::default() }
    }

    /// Every field filled: what templates are checked against when loaded.
    fn sample() -> Self {
        let start = Timestamp::from_second(1_777_640_400).unwrap_or(Timestamp::UNIX_EPOCH);
        let end = Timestamp::from_second(1_777_642_200).unwrap_or(Timestamp::UNIX_EPOCH);
        Self {
            recipient_name: Some("Ana Ruiz".into()),
            previous_when: Some(when(start, end, &Zone::utc())),
            host_names: vec!["Hana Host".into()],
            participant_names: vec!["Ana Ruiz".into(), "Bo Lee".into()],
            notes: Some("Notes".into()),
            cancellation_reason: Some("Reason".into()),
            business_name: Some("Example Studio".into()),
            manage_url: Some("https://book.example.com/manage".into()),
            booking_url: Some("https://book.example.com/".into()),
            ..Self::new("Intro call", start, end, &Zone::utc())
        }
    }
}

/// What a proposal invitation's templates can say, as the variables of the same names. The
/// recipient's zone is not known (they may not be a Kairos user), so times are in UTC.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
struct ProposalContext {
    #[serde(skip_serializing_if = "Option::is_none")]
    recipient_name: Option<String>,
    /// Who invites: the organiser's name, else their address.
    organiser: String,
    title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    /// `consensus` (pick one time, or suggest others) or `poll` (vote for every time that works).
    mode: &'static str,
    /// Each time on offer, earliest first, as [`when`] says it.
    slots: Vec<String>,
    /// `UTC`.
    timezone: String,
    /// The recipient's personal link to respond.
    response_url: String,
    /// When the proposal closes: "Friday, May 8 at 1:00 PM UTC".
    expires: String,
}

impl ProposalContext {
    fn new(proposal: &Proposal, recipient_name: Option<&str>, response_url: &str) -> Self {
        let utc = Zone::utc();
        let mut slots: Vec<_> = proposal.slots.iter().collect();
        slots.sort_by_key(|s| (s.start, s.end));
        Self {
            recipient_name: recipient_name.map(str::to_string),
            organiser: proposal.organiser.name.clone().unwrap_or_else(|| proposal.organiser.email.clone()),
            title: proposal.title.clone(),
            description: proposal.description.clone(),
            mode: match proposal.mode {
                ProposalMode::Consensus => "consensus",
                ProposalMode::Poll => "poll",
            },
            slots: slots.into_iter().map(|s| when(s.start, s.end, &utc)).collect(),
            timezone: utc.name().to_string(),
            response_url: response_url.to_string(),
            expires: describe(proposal.expires_at, &utc),
        }
    }

    /// Every field filled: what templates are checked against when loaded.
    fn sample() -> Self {
        let start = Timestamp::from_second(1_777_640_400).unwrap_or(Timestamp::UNIX_EPOCH);
        let end = Timestamp::from_second(1_777_642_200).unwrap_or(Timestamp::UNIX_EPOCH);
        Self {
            recipient_name: Some("Ana Ruiz".into()),
            organiser: "Hana Host".into(),
            title: "Planning".into(),
            description: Some("Description".into()),
            mode: "consensus",
            slots: vec![when(start, end, &Zone::utc())],
            timezone: "UTC".into(),
            response_url: "https://kairos.example.com/p/respond".into(),
            expires: describe(end, &Zone::utc()),
        }
    }
}

/// What a proposal's outcome email tells a participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProposalOutcome {
    /// Everyone agreed and the time is booked (`proposal_accepted.*`).
    Accepted,
    /// The poll chose a time (`proposal_resolved.*`).
    Resolved,
    /// The accepted or resolved proposal was called off (`proposal_cancelled.*`).
    Cancelled,
}

impl ProposalOutcome {
    pub const ALL: [ProposalOutcome; 3] = [Self::Accepted, Self::Resolved, Self::Cancelled];

    /// The prefix of its template files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Accepted => "proposal_accepted",
            Self::Resolved => "proposal_resolved",
            Self::Cancelled => "proposal_cancelled",
        }
    }
}

/// What a proposal outcome's templates can say, as the variables of the same names. Times are
/// in UTC, as in the invitation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
struct OutcomeContext {
    #[serde(skip_serializing_if = "Option::is_none")]
    recipient_name: Option<String>,
    /// Who organises: the organiser's name, else their address.
    organiser: String,
    title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    /// The agreed (or chosen) time, as [`when`] says it in UTC.
    when: String,
    /// `UTC`.
    timezone: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cancellation_reason: Option<String>,
    /// Whether a calendar invitation (or its cancellation) is attached: a time was booked.
    booked: bool,
}

impl OutcomeContext {
    /// Every field filled: what templates are checked against when loaded.
    fn sample() -> Self {
        let start = Timestamp::from_second(1_777_640_400).unwrap_or(Timestamp::UNIX_EPOCH);
        let end = Timestamp::from_second(1_777_642_200).unwrap_or(Timestamp::UNIX_EPOCH);
        Self {
            recipient_name: Some("Ana Ruiz".into()),
            organiser: "Hana Host".into(),
            title: "Planning".into(),
            description: Some("Description".into()),
            when: when(start, end, &Zone::utc()),
            timezone: "UTC".into(),
            cancellation_reason: Some("Reason".into()),
            booked: true,
        }
    }
}

/// A booking's time as people say it, in `zone`: "Friday, May 1, 2026, 9:00 – 9:30 AM EDT".
/// The zone's abbreviation is the one in force at each end, so an event across a DST change
/// reads "1:30 AM EDT – 1:30 AM EST"; one across midnight names both days.
pub fn when(start: Timestamp, end: Timestamp, zone: &Zone) -> String {
    let (s, e) = (start.to_zoned(zone.tz().clone()), end.to_zoned(zone.tz().clone()));
    let (s_label, e_label) = (zone_label(start, zone), zone_label(end, zone));
    let date = |z: &Zoned| z.strftime("%A, %B %-d, %Y").to_string();
    let clock = |z: &Zoned| z.strftime("%-I:%M").to_string();
    let half = |z: &Zoned| z.strftime("%p").to_string();
    if s.date() != e.date() {
        let first = if s_label == e_label { String::new() } else { format!(" {s_label}") };
        format!("{}, {} {}{first} – {}, {} {} {e_label}", date(&s), clock(&s), half(&s), date(&e), clock(&e), half(&e))
    } else if s_label != e_label {
        format!("{}, {} {} {s_label} – {} {} {e_label}", date(&s), clock(&s), half(&s), clock(&e), half(&e))
    } else if half(&s) == half(&e) {
        format!("{}, {} – {} {} {e_label}", date(&s), clock(&s), clock(&e), half(&e))
    } else {
        format!("{}, {} {} – {} {} {e_label}", date(&s), clock(&s), half(&s), clock(&e), half(&e))
    }
}

/// One email's rendered parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line.
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Why the templates cannot be loaded or an email cannot be rendered.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read the email templates in {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("email template {name} ({origin}): {message}")]
    Template { name: String, origin: String, message: String },
}

/// The email templates: the shipped ones, each replaced by a file of the same name in the
/// override folder if there is one.
pub struct EmailTemplates {
    env: Environment<'static>,
    /// Where each template came from (for errors): "built in" or the file's path.
    origins: Vec<(&'static str, String)>,
}

impl std::fmt::Debug for EmailTemplates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailTemplates").field("origins", &self.origins).finish()
    }
}

impl EmailTemplates {
    /// The shipped templates only.
    pub fn builtin() -> Result<Self, TemplateError> {
        Self::load(None)
    }

    /// The shipped templates, each replaced by `dir/<name>` when that file exists. Files in
    /// `dir` that replace nothing are reported in the log (a misspelt name would otherwise be
    /// ignored without a word).
    pub fn load(dir: Option<&Path>) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).build();
        env.set_syntax(syntax.map_err(|e| template_error("(syntax)", "built in", &e))?);
        env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
        let mut origins = Vec::with_capacity(DEFAULTS.len());
        for (name, default) in DEFAULTS {
            let file = dir.map(|d| d.join(name)).filter(|p| p.is_file());
            let (source, origin) = match file {
                Some(path) => match std::fs::read_to_string(&path) {
                    Ok(text) => (text, path.display().to_string()),
                    Err(source) => return Err(TemplateError::Read { path, source }),
                },
                None => (default.to_string(), "built in".to_string()),
            };
            env.add_template_owned(name, source).map_err(|e| template_error(name, &origin, &e))?;
            origins.push((name, origin));
        }
        if let Some(dir) = dir {
            warn_about_strangers(dir)?;
        }
        let mut templates = Self { env, origins };
        // A misspelt variable fails here rather than in front of a customer.
        templates.env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        let sample = EmailContext::sample();
        for kind in EmailKind::ALL {
            templates.render(kind, &sample)?;
        }
        let proposal = ProposalContext::sample();
        templates.render_parts(PROPOSAL_INVITATION, &proposal)?;
        templates.render_parts(PROPOSAL_INVITATION, &ProposalContext { mode: "poll", ..proposal })?;
        let outcome = OutcomeContext::sample();
        for kind in ProposalOutcome::ALL {
            templates.render_parts(kind.name(), &outcome)?;
            templates.render_parts(kind.name(), &OutcomeContext { booked: false, ..outcome.clone() })?;
        }
        templates.env.set_undefined_behavior(UndefinedBehavior::Lenient);
        Ok(templates)
    }

    /// The subject, text and HTML of one email.
    pub fn render(&self, kind: EmailKind, context: &EmailContext) -> Result<Rendered, TemplateError> {
        self.render_parts(kind.name(), context)
    }

    /// The invitation to respond to `proposal` sent to one participant: who invites, what,
    /// how to decide, the times on offer (in UTC), `response_url` (their personal link) and
    /// when the proposal closes.
    pub fn render_proposal_invitation(
        &self,
        proposal: &Proposal,
        recipient_name: Option<&str>,
        response_url: &str,
    ) -> Result<Rendered, TemplateError> {
        self.render_parts(PROPOSAL_INVITATION, &ProposalContext::new(proposal, recipient_name, response_url))
    }

    /// The outcome of `proposal` told to one participant: the agreed (or chosen) time from
    /// `start` to `end` in UTC, who organises, and for a cancellation `proposal`'s reason.
    /// `booked` says whether a calendar invitation (or its cancellation) is attached.
    pub fn render_proposal_outcome(
        &self,
        kind: ProposalOutcome,
        proposal: &Proposal,
        recipient_name: Option<&str>,
        (start, end): (Timestamp, Timestamp),
        booked: bool,
    ) -> Result<Rendered, TemplateError> {
        let utc = Zone::utc();
        let context = OutcomeContext {
            recipient_name: recipient_name.map(str::to_string),
            organiser: proposal.organiser.name.clone().unwrap_or_else(|| proposal.organiser.email.clone()),
            title: proposal.title.clone(),
            description: proposal.description.clone(),
            when: when(start, end, &utc),
            timezone: utc.name().to_string(),
            cancellation_reason: match kind {
                ProposalOutcome::Cancelled => proposal.cancellation_reason.clone(),
                _ => None,
            },
            booked,
        };
        self.render_parts(kind.name(), &context)
    }

    /// The three templates named `prefix.*`, rendered with `context`.
    fn render_parts(&self, prefix: &str, context: &impl Serialize) -> Result<Rendered, TemplateError> {
        let render = |suffix: &str| {
            let name = format!("{prefix}.{suffix}");
            let origin = self.origins.iter().find(|(n, _)| *n == name).map_or("built in", |(_, o)| o.as_str());
            self.env
                .get_template(&name)
                .and_then(|t| t.render(Serde(context)))
                .map_err(|e| template_error(&name, origin, &e))
        };
        let subject = render("subject.txt")?.split_whitespace().collect::<Vec<_>>().join(" ");
        let text = format!("{}\n", render("txt")?.trim());
        let html = render("html")?;
        Ok(Rendered { subject, text, html })
    }
}

fn template_error(name: &str, origin: &str, e: &minijinja::Error) -> TemplateError {
    let mut message = e.to_string();
    if let Some(line) = e.line() {
        message.push_str(&format!(" (line {line})"));
    }
    TemplateError::Template { name: name.to_string(), origin: origin.to_string(), message }
}

fn warn_about_strangers(dir: &Path) -> Result<(), TemplateError> {
    let known: BTreeSet<&str> = DEFAULTS.iter().map(|(name, _)| *name).collect();
    let entries = std::fs::read_dir(dir).map_err(|source| TemplateError::Read { path: dir.to_path_buf(), source })?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !known.contains(name.as_str()) && !name.starts_with('.') {
            tracing::warn!(file = %entry.path().display(), "not an email template name; it replaces nothing");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn zone(name: &str) -> Zone {
        Zone::parse(name).unwrap()
    }

    fn context() -> EmailContext {
        EmailContext {
            recipient_name: Some("Ana Ruiz".into()),
            host_names: vec!["Hana Host".into()],
            participant_names: vec!["Ana Ruiz".into()],
            business_name: Some("Example Studio".into()),
            manage_url: Some("https://book.example.com/manage/bk_1?token=a&b=c".into()),
            ..EmailContext::new(
                "Intro call",
                ts("2026-05-01T13:00:00Z"),
                ts("2026-05-01T13:30:00Z"),
                &zone("America/New_York"),
            )
        }
    }

    #[test]
    fn when_reads_as_plain_english_in_the_recipients_zone() {
        let ny = zone("America/New_York");
        assert_eq!(
            when(ts("2026-05-01T13:00:00Z"), ts("2026-05-01T13:30:00Z"), &ny),
            "Friday, May 1, 2026, 9:00 – 9:30 AM EDT"
        );
        assert_eq!(
            when(ts("2026-05-01T15:30:00Z"), ts("2026-05-01T16:30:00Z"), &ny),
            "Friday, May 1, 2026, 11:30 AM – 12:30 PM EDT"
        );
        let berlin = zone("Europe/Berlin");
        assert_eq!(
            when(ts("2026-05-01T13:00:00Z"), ts("2026-05-01T13:30:00Z"), &berlin),
            "Friday, May 1, 2026, 3:00 – 3:30 PM CEST"
        );
        let tokyo = zone("Asia/Tokyo");
        assert_eq!(
            when(ts("2026-05-01T14:30:00Z"), ts("2026-05-01T15:30:00Z"), &tokyo),
            "Friday, May 1, 2026, 11:30 PM – Saturday, May 2, 2026, 12:30 AM JST"
        );
    }

    #[test]
    fn when_follows_dst_in_the_recipients_zone() {
        let ny = zone("America/New_York");
        // The same UTC time of day, either side of 2026-03-08's spring-forward.
        assert_eq!(
            when(ts("2026-03-07T14:00:00Z"), ts("2026-03-07T14:30:00Z"), &ny),
            "Saturday, March 7, 2026, 9:00 – 9:30 AM EST"
        );
        assert_eq!(
            when(ts("2026-03-08T14:00:00Z"), ts("2026-03-08T14:30:00Z"), &ny),
            "Sunday, March 8, 2026, 10:00 – 10:30 AM EDT"
        );
        // An hour across 2026-11-01's fall-back: 1:30 AM happens twice.
        assert_eq!(
            when(ts("2026-11-01T05:30:00Z"), ts("2026-11-01T06:30:00Z"), &ny),
            "Sunday, November 1, 2026, 1:30 AM EDT – 1:30 AM EST"
        );
        // Berlin has not changed yet on 2026-03-08 (it does on the 29th).
        assert_eq!(
            when(ts("2026-03-08T14:00:00Z"), ts("2026-03-08T14:30:00Z"), &zone("Europe/Berlin")),
            "Sunday, March 8, 2026, 3:00 – 3:30 PM CET"
        );
    }

    #[test]
    fn every_kind_renders_with_the_shipped_templates() {
        let templates = EmailTemplates::builtin().unwrap();
        let c = context();
        let confirmation = templates.render(EmailKind::Confirmation, &c).unwrap();
        assert_eq!(confirmation.subject, "Confirmed: Intro call — Friday, May 1, 2026, 9:00 – 9:30 AM EDT");
        assert!(confirmation.text.contains("Hello Ana Ruiz,"), "{}", confirmation.text);
        assert!(confirmation.text.contains("When: Friday, May 1, 2026, 9:00 – 9:30 AM EDT"), "{}", confirmation.text);
        assert!(
            confirmation.text.contains("https://book.example.com/manage/bk_1?token=a&b=c"),
            "{}",
            confirmation.text
        );
        assert!(!confirmation.text.contains("none") && !confirmation.text.contains("Notes"), "{}", confirmation.text);
        assert!(
            confirmation
                .html
                .contains("href=\"https:&#x2f;&#x2f;book.example.com&#x2f;manage&#x2f;bk_1?token=a&amp;b=c\""),
            "{}",
            confirmation.html
        );

        let moved =
            EmailContext { previous_when: Some("Thursday, April 30, 2026, 9:00 – 9:30 AM EDT".into()), ..c.clone() };
        let updated = templates.render(EmailKind::Updated, &moved).unwrap();
        assert!(updated.subject.starts_with("Rescheduled: Intro call"), "{}", updated.subject);
        assert!(updated.text.contains("Thursday, April 30"), "{}", updated.text);
        assert!(updated.html.contains("Thursday, April 30"), "{}", updated.html);

        let gone = EmailContext { cancellation_reason: Some("Host is ill".into()), ..c };
        let cancelled = templates.render(EmailKind::Cancelled, &gone).unwrap();
        assert!(cancelled.subject.starts_with("Cancelled: Intro call"), "{}", cancelled.subject);
        assert!(cancelled.text.contains("Host is ill") && cancelled.html.contains("Host is ill"));
    }

    #[test]
    fn html_escapes_what_people_typed_and_text_keeps_it() {
        let templates = EmailTemplates::builtin().unwrap();
        let c = EmailContext {
            recipient_name: Some("<script>alert(1)</script>".into()),
            notes: Some("Tom & Jerry's \"notes\"".into()),
            ..context()
        };
        let r = templates.render(EmailKind::Confirmation, &c).unwrap();
        assert!(!r.html.contains("<script>"), "{}", r.html);
        assert!(r.html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"), "{}", r.html);
        assert!(r.html.contains("Tom &amp; Jerry&#x27;s &quot;notes&quot;"), "{}", r.html);
        assert!(r.text.contains("Hello <script>alert(1)</script>,"), "{}", r.text);
    }

    fn proposal(mode: ProposalMode, title: &str) -> Proposal {
        use kairos_core::Interval;
        use kairos_core::proposal::{Invitee, NewProposal, Organiser};
        let slot = |id: &str, start: &str, end: &str| (id.to_string(), Interval::new(ts(start), ts(end)).unwrap());
        let new = NewProposal {
            id: "prop_1".into(),
            thread_id: "thr_1".into(),
            title: title.into(),
            description: None,
            duration_minutes: 30,
            organiser: Organiser { user_id: "usr_1".into(), email: "hana@example.com".into(), name: None },
            mode,
            poll_variant: None,
            participants: vec![Invitee { email: "ana@example.com".into(), name: None, required: true, user_id: None }],
            // Out of order: the email lists them earliest first.
            slots: vec![
                slot("slot_2", "2026-05-04T15:00:00Z", "2026-05-04T15:30:00Z"),
                slot("slot_1", "2026-05-01T13:00:00Z", "2026-05-01T13:30:00Z"),
            ],
            expires_at: Some(ts("2026-05-08T12:00:00Z")),
        };
        Proposal::new(new, ts("2026-04-20T08:00:00Z")).unwrap()
    }

    const LINK: &str = "https://kairos.example.com/p/prop_1/respond?token=abc&x=1";

    #[test]
    fn a_proposal_invitation_lists_the_slots_in_utc_with_the_link() {
        let templates = EmailTemplates::builtin().unwrap();
        let mut p = proposal(ProposalMode::Consensus, "Quarterly planning");
        p.organiser.name = Some("Hana Host".into());
        p.description = Some("Bring the numbers.".into());
        let r = templates.render_proposal_invitation(&p, Some("Ana Ruiz"), LINK).unwrap();
        assert_eq!(r.subject, "Hana Host invites you: Quarterly planning");
        let text = &r.text;
        assert!(
            text.starts_with("Hello Ana Ruiz,\n\nHana Host invites you to find a time for: Quarterly planning"),
            "{text}"
        );
        assert!(text.contains("Pick a time that works for you, or suggest others."), "{text}");
        assert!(text.contains("Bring the numbers."), "{text}");
        let first = "- Friday, May 1, 2026, 1:00 – 1:30 PM UTC\n";
        let second = "- Monday, May 4, 2026, 3:00 – 3:30 PM UTC\n";
        let (a, b) = (text.find(first), text.find(second));
        assert!(a.is_some() && b.is_some() && a < b, "{text}");
        assert!(text.contains(&format!("Respond here: {LINK}\n")), "{text}");
        assert!(text.contains("Please respond by Friday, May 8 at 12:00 PM UTC."), "{text}");
        assert!(!text.contains("Vote"), "{text}");

        let html = &r.html;
        assert!(html.contains("<li style=\"padding:2px 0;\">Friday, May 1, 2026, 1:00 – 1:30 PM UTC</li>"), "{html}");
        assert!(html.contains("Monday, May 4, 2026, 3:00 – 3:30 PM UTC"), "{html}");
        assert!(
            html.contains(
                "href=\"https:&#x2f;&#x2f;kairos.example.com&#x2f;p&#x2f;prop_1&#x2f;respond?token=abc&amp;x=1\""
            ),
            "{html}"
        );
        assert!(html.contains("Friday, May 8 at 12:00 PM UTC"), "{html}");
    }

    #[test]
    fn a_poll_invitation_asks_for_votes_and_names_the_organiser_by_address_without_a_name() {
        let templates = EmailTemplates::builtin().unwrap();
        let r = templates.render_proposal_invitation(&proposal(ProposalMode::Poll, "Offsite"), None, LINK).unwrap();
        assert_eq!(r.subject, "hana@example.com invites you: Offsite");
        assert!(r.text.starts_with("Hello,\n"), "{}", r.text);
        assert!(r.text.contains("Vote for the times that work for you."), "{}", r.text);
        assert!(r.text.contains(&format!("Vote here: {LINK}")), "{}", r.text);
        assert!(!r.text.contains("suggest others"), "{}", r.text);
        assert!(r.html.contains("Vote for the times that work for you."), "{}", r.html);
    }

    #[test]
    fn a_proposal_invitation_escapes_the_title_in_html_only() {
        let templates = EmailTemplates::builtin().unwrap();
        let mut p = proposal(ProposalMode::Consensus, "<script>alert(1)</script> & \"more\"");
        p.organiser.name = Some("Tom & Jerry".into());
        let r = templates.render_proposal_invitation(&p, Some("<b>Ana</b>"), LINK).unwrap();
        assert!(!r.html.contains("<script>") && !r.html.contains("<b>Ana"), "{}", r.html);
        assert!(
            r.html.contains("<strong>&lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; &quot;more&quot;</strong>"),
            "{}",
            r.html
        );
        assert!(r.html.contains("<title>&lt;script&gt;"), "{}", r.html);
        assert!(r.html.contains("Tom &amp; Jerry invites you"), "{}", r.html);
        assert!(r.html.contains("Hello &lt;b&gt;Ana&lt;&#x2f;b&gt;,"), "{}", r.html);
        assert_eq!(r.subject, "Tom & Jerry invites you: <script>alert(1)</script> & \"more\"");
        assert!(r.text.contains("find a time for: <script>alert(1)</script> & \"more\""), "{}", r.text);
    }

    #[test]
    fn a_proposal_invitation_override_is_checked_at_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("proposal_invitation.subject.txt"), "Please answer: {{ title }}\n").unwrap();
        let templates = EmailTemplates::load(Some(dir.path())).unwrap();
        let r = templates.render_proposal_invitation(&proposal(ProposalMode::Poll, "Offsite"), None, LINK).unwrap();
        assert_eq!(r.subject, "Please answer: Offsite");

        std::fs::write(dir.path().join("proposal_invitation.txt"), "{{ response_link }}").unwrap();
        let error = EmailTemplates::load(Some(dir.path())).unwrap_err().to_string();
        assert!(error.contains("proposal_invitation.txt"), "{error}");
    }

    #[test]
    fn proposal_outcomes_say_the_time_in_utc_and_escape_html_only() {
        let templates = EmailTemplates::builtin().unwrap();
        let mut p = proposal(ProposalMode::Consensus, "Planning <q2>");
        p.organiser.name = Some("Hana & Co".into());
        let time = (ts("2026-05-01T13:00:00Z"), ts("2026-05-01T13:30:00Z"));
        let accepted =
            templates.render_proposal_outcome(ProposalOutcome::Accepted, &p, Some("Ana Ruiz"), time, true).unwrap();
        assert_eq!(accepted.subject, "Confirmed: Planning <q2>");
        let text = &accepted.text;
        assert!(text.starts_with("Hello Ana Ruiz,\n\nEveryone agreed on a time for: Planning <q2>"), "{text}");
        assert!(text.contains("When: Friday, May 1, 2026, 1:00 – 1:30 PM UTC\n"), "{text}");
        assert!(text.contains("Organised by: Hana & Co\n"), "{text}");
        assert!(text.contains("A calendar invitation is attached."), "{text}");
        let html = &accepted.html;
        assert!(html.contains("<strong>Planning &lt;q2&gt;</strong>") && html.contains("Hana &amp; Co"), "{html}");
        assert!(!html.contains("<q2>"), "{html}");

        let resolved = templates.render_proposal_outcome(ProposalOutcome::Resolved, &p, None, time, false).unwrap();
        assert_eq!(resolved.subject, "Chosen: Planning <q2>");
        assert!(resolved.text.starts_with("Hello,\n"), "{}", resolved.text);
        assert!(resolved.text.contains("When: Friday, May 1, 2026, 1:00 – 1:30 PM UTC"), "{}", resolved.text);
        assert!(resolved.text.contains("nothing has been booked"), "{}", resolved.text);
        assert!(!resolved.text.contains("attached"), "{}", resolved.text);

        p.cancellation_reason = Some("Budget <cut>".into());
        let cancelled = templates.render_proposal_outcome(ProposalOutcome::Cancelled, &p, None, time, true).unwrap();
        assert_eq!(cancelled.subject, "Cancelled: Planning <q2>");
        assert!(cancelled.text.contains("Hana & Co has cancelled: Planning <q2>"), "{}", cancelled.text);
        assert!(cancelled.text.contains("Reason:\nBudget <cut>"), "{}", cancelled.text);
        assert!(cancelled.text.contains("removes it from your calendar"), "{}", cancelled.text);
        assert!(cancelled.html.contains("Budget &lt;cut&gt;"), "{}", cancelled.html);
        let unbooked = templates.render_proposal_outcome(ProposalOutcome::Cancelled, &p, None, time, false).unwrap();
        assert!(!unbooked.text.contains("calendar") && !unbooked.html.contains("calendar"), "{}", unbooked.text);
        // A reason belongs to a cancellation only.
        let accepted = templates.render_proposal_outcome(ProposalOutcome::Accepted, &p, None, time, true).unwrap();
        assert!(!accepted.text.contains("Budget"), "{}", accepted.text);
    }

    #[test]
    fn a_proposal_outcome_override_is_checked_at_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("proposal_resolved.txt"), "{{ winner }}").unwrap();
        let error = EmailTemplates::load(Some(dir.path())).unwrap_err().to_string();
        assert!(error.contains("proposal_resolved.txt"), "{error}");
    }

    #[test]
    fn a_file_in_the_override_folder_replaces_its_default_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("confirmation.subject.txt"), "Booked: {{ title }}\n").unwrap();
        std::fs::write(
            dir.path().join("layout.html"),
            "<html><body style=\"color:#000\">{% block content %}{% endblock %}</body></html>",
        )
        .unwrap();
        let templates = EmailTemplates::load(Some(dir.path())).unwrap();
        let r = templates.render(EmailKind::Confirmation, &context()).unwrap();
        assert_eq!(r.subject, "Booked: Intro call");
        assert!(r.html.starts_with("<html><body style=\"color:#000\">"), "{}", r.html);
        // The rest are still the shipped ones.
        assert!(r.text.contains("When: Friday, May 1, 2026"), "{}", r.text);
        let cancelled = templates.render(EmailKind::Cancelled, &context()).unwrap();
        assert!(cancelled.subject.starts_with("Cancelled: Intro call"));
    }

    #[test]
    fn a_broken_override_fails_at_load_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("updated.txt"), "Hello {{ recipient_nam }}").unwrap();
        let error = EmailTemplates::load(Some(dir.path())).unwrap_err().to_string();
        assert!(error.contains("updated.txt") && error.contains(&dir.path().display().to_string()), "{error}");

        std::fs::write(dir.path().join("updated.txt"), "Hello {% if %}").unwrap();
        let error = EmailTemplates::load(Some(dir.path())).unwrap_err().to_string();
        assert!(error.contains("updated.txt") && error.contains("line 1"), "{error}");

        let missing = dir.path().join("nope");
        assert!(matches!(EmailTemplates::load(Some(&missing)), Err(TemplateError::Read { .. })));
    }
}
