//! The booking form of a link's page: what a visitor sends, what is wrong with it (in words
//! next to each field), and the page that asks for it.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use kairos_core::plan::Party;
use kairos_core::{Interval, Link, Zone};
use serde::{Deserialize, Serialize};

use super::{LinkView, local_date, view, week_href};

/// The largest booking form accepted (the notes are at most 5,000 characters).
const FORM_LIMIT: usize = 64 * 1024;
const NAME_MAX: usize = 200;
const NOTES_MAX: usize = 5000;

/// The booking form as posted (`application/x-www-form-urlencoded`).
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct BookForm {
    #[serde(default)]
    pub start: String,
    #[serde(default)]
    pub tz: String,
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub notes: String,
}

/// Reads a posted form, or the page that says it could not be (too large, or not a form);
/// `back` is the booking page.
pub async fn read(body: Body, back: &str) -> Result<BookForm, Response> {
    let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
        return Err(view::message(
            StatusCode::PAYLOAD_TOO_LARGE,
            "That was too much",
            "The form was larger than we accept. Shorten your notes and try again.",
            Some((back, "Back to the booking page")),
        ));
    };
    serde_urlencoded::from_bytes::<BookForm>(&bytes).map_err(|_| {
        view::message(
            StatusCode::BAD_REQUEST,
            "The form could not be read",
            "Please go back to the booking page and pick a time again.",
            Some((back, "Back to the booking page")),
        )
    })
}

/// What is wrong with each field, in words for the visitor.
#[derive(Debug, Default, Serialize)]
pub struct FieldErrors {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notes: Option<&'static str>,
}

/// The visitor's details, checked.
pub struct Visitor {
    pub name: String,
    pub email: String,
    pub notes: Option<String>,
}

/// The visitor's details, or what to correct in each field.
pub fn check(form: &BookForm) -> Result<Visitor, FieldErrors> {
    let mut errors = FieldErrors::default();
    let name = form.name.trim();
    if name.is_empty() {
        errors.name = Some("Enter your name.");
    } else if name.chars().count() > NAME_MAX {
        errors.name = Some("Your name is too long: use at most 200 characters.");
    }
    let email = match form.email.trim() {
        "" => {
            errors.email = Some("Enter your email address.");
            None
        }
        text => match crate::wire::email("email", text) {
            Ok(email) => Some(email),
            Err(_) => {
                errors.email = Some("Enter an email address like name@example.com.");
                None
            }
        },
    };
    let notes = form.notes.trim();
    if notes.chars().count() > NOTES_MAX {
        errors.notes = Some("Your notes are too long: use at most 5,000 characters.");
    }
    match email {
        Some(email) if errors.name.is_none() && errors.notes.is_none() => {
            Ok(Visitor { name: name.to_string(), email, notes: (!notes.is_empty()).then(|| notes.to_string()) })
        }
        _ => Err(errors),
    }
}

#[derive(Serialize)]
struct FormPage<'a> {
    page_title: &'a str,
    link: LinkView,
    when: String,
    start: String,
    zone: &'a str,
    csrf: &'a str,
    back_url: String,
    form: &'a BookForm,
    errors: &'a FieldErrors,
    script: &'static str,
}

/// The form for `slot`, filled with what was typed and the errors found in it (if any).
#[allow(clippy::too_many_arguments)]
pub fn page(
    status: StatusCode,
    link: &Link,
    party: &Party,
    zone: &Zone,
    slot: Interval,
    csrf: &str,
    form: &BookForm,
    errors: &FieldErrors,
) -> Response {
    view::page(
        status,
        "book.html",
        FormPage {
            page_title: &link.title,
            link: LinkView::new(link, party),
            when: kairos_jobs::mail::when(slot.start(), slot.end(), zone),
            start: slot.start().to_string(),
            zone: zone.name(),
            csrf,
            back_url: week_href(&link.slug, Some(&local_date(slot, zone)), Some(zone.name())),
            form,
            errors,
            script: view::SUBMIT_ONCE_SCRIPT,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_names_what_is_wrong_with_each_field() {
        let form = |name: &str, email: &str, notes: &str| BookForm {
            name: name.into(),
            email: email.into(),
            notes: notes.into(),
            ..BookForm::default()
        };
        let ok = check(&form(" Jane Doe ", "Jane@Example.com", "")).ok().unwrap();
        assert_eq!((ok.name.as_str(), ok.email.as_str(), ok.notes), ("Jane Doe", "jane@example.com", None));
        let bad = check(&form("", "nope", &"x".repeat(5001))).err().unwrap();
        assert!(bad.name.is_some() && bad.email.is_some() && bad.notes.is_some());
        let missing = check(&form("Jane", "", "")).err().unwrap();
        assert_eq!((missing.name, missing.email), (None, Some("Enter your email address.")));
    }
}
