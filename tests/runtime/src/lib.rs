//! Shared helpers for the runtime end-to-end tests.
