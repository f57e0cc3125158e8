//! Test helpers for hass-auth: fake clock, seeded rng, temp stores, conformance suites.
