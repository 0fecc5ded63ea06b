//! IANA time zones, always resolved from the time zone database bundled into the binary, so
//! every node computes the same local times whatever the host's /usr/share/zoneinfo says.

use std::sync::OnceLock;

use jiff::tz::{TimeZone, TimeZoneDatabase};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

fn database() -> &'static TimeZoneDatabase {
    static DB: OnceLock<TimeZoneDatabase> = OnceLock::new();
    DB.get_or_init(TimeZoneDatabase::bundled)
}

/// A validated IANA time zone and the name it was given by.
#[derive(Clone, Debug)]
pub struct Zone {
    name: String,
    tz: TimeZone,
}

/// The name was not an IANA time zone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone `{0}`: use an IANA name such as America/New_York, Europe/Berlin or UTC")]
pub struct UnknownZone(pub String);

impl Zone {
    /// Looks an IANA name up in the bundled database (exact names; `UTC` is always known).
    pub fn parse(name: &str) -> Result<Self, UnknownZone> {
        let trimmed = name.trim();
        if trimmed.is_empty() || trimmed.len() > 64 {
            return Err(UnknownZone(name.to_string()));
        }
        match database().get(trimmed) {
            Ok(tz) => Ok(Self { name: tz.iana_name().unwrap_or(trimmed).to_string(), tz }),
            Err(_) => Err(UnknownZone(name.to_string())),
        }
    }

    /// UTC.
    pub fn utc() -> Self {
        Self { name: "UTC".to_string(), tz: TimeZone::UTC }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn tz(&self) -> &TimeZone {
        &self.tz
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for Zone {}

impl Serialize for Zone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Zone::parse(&name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iana_names_parse_and_nonsense_does_not() {
        assert_eq!(Zone::parse("America/New_York").unwrap().name(), "America/New_York");
        assert_eq!(Zone::parse("UTC").unwrap().name(), "UTC");
        assert!(Zone::parse("Mars/Olympus_Mons").is_err());
        assert!(Zone::parse("").is_err());
    }
}
