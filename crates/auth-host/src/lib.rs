//! Builds an AuthManager from Home Assistant's configuration.yaml; one cargo feature per plugin.
