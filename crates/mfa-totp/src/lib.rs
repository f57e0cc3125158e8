//! The totp MFA module for hass-auth.
