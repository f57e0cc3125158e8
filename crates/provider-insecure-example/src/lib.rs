//! The insecure-example auth provider for hass-auth.
