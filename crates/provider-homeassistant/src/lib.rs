//! The homeassistant auth provider for hass-auth.
