//! The insecure-example MFA module for hass-auth.
