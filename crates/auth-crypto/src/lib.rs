//! Password hashing, constant-time comparison, random tokens and HS256 JWTs for hass-auth.
