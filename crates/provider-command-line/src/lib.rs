//! The command-line auth provider for hass-auth.
