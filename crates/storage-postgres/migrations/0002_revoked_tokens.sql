-- Ids of revoked refresh tokens. Another instance may still hold a revoked token in memory and
-- save its usage data (last_used_at) later; that save must not bring the token back.
CREATE TABLE revoked_tokens (
    id text PRIMARY KEY
);
