//! Shared helpers for the peers end-to-end tests.
