//! The Microsoft emulator (identity platform + Graph calendar, delta, subscriptions).
