//! The trusted-networks auth provider for hass-auth.
