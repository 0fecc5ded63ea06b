//! caldav
