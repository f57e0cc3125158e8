-- Change records too large for a notification's payload (8000 bytes): the notification names
-- the row, other instances read it. Rows older than a few minutes are deleted as new ones come.
CREATE TABLE change_records (
    seq bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    record json NOT NULL
);

-- Per-user stores without a table of their own (recovery codes, the sign-in history): one row
-- per user, so that instances saving different users never overwrite each other.
CREATE TABLE user_documents (
    key text NOT NULL,
    user_id text NOT NULL,
    pos bigserial NOT NULL,
    data json NOT NULL,
    PRIMARY KEY (key, user_id)
);

-- One owner, and one credential per username of a provider, whichever instance writes: checked
-- at commit, so a change that moves ownership within one transaction passes.
ALTER TABLE auth_users ADD CONSTRAINT auth_users_one_owner
    EXCLUDE USING btree (is_owner WITH =) WHERE (is_owner) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE auth_credentials ADD CONSTRAINT auth_credentials_one_username
    EXCLUDE USING btree (
        auth_provider_type WITH =,
        (coalesce(auth_provider_id, '')) WITH =,
        ((data ->> 'username')) WITH =
    ) WHERE (data ->> 'username' IS NOT NULL) DEFERRABLE INITIALLY DEFERRED;

-- Authorization codes, redeemable once on whichever instance the token request reaches. A
-- redeemed code stays until it expires, with the refresh tokens issued from it, so that a second
-- presentation revokes them.
CREATE TABLE auth_codes (
    key text PRIMARY KEY,
    data json NOT NULL,
    expires_at timestamptz NOT NULL,
    redeemed boolean NOT NULL DEFAULT false,
    reused boolean NOT NULL DEFAULT false,
    tokens text[] NOT NULL DEFAULT '{}'
);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

-- IP bans and failed-login counters every instance shares. An IP is a ban key (an address, or an
-- IPv6 /64). A counter halves every half-life; counters that decayed away are deleted as new
-- failures come, so the table stays bounded by the recent attackers.
CREATE TABLE bans (
    ip text PRIMARY KEY,
    banned_at double precision NOT NULL
);
CREATE TABLE failed_logins (
    ip text PRIMARY KEY,
    score double precision NOT NULL,
    updated double precision NOT NULL
);
CREATE INDEX failed_logins_updated ON failed_logins (updated);
