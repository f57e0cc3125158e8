//! Home Assistant's /auth HTTP and websocket API as an axum router.
