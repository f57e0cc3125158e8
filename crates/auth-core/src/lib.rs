//! Home Assistant's auth model: users, groups, credentials, tokens, store, AuthManager, login flows.
