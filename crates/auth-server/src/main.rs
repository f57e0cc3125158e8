//! The hass-auth binary: serve, user/token admin, check-config, schema.
fn main() {}
