//! Starts a real Radicale CalDAV server (PyPI `radicale`) on 127.0.0.1 for tests.
