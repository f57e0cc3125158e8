//! The legacy-api-password auth provider for hass-auth.
