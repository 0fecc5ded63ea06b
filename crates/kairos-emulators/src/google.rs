//! The Google emulator (OAuth 2.0 + Calendar API v3 + push).
