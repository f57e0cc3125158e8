-- hass-auth's tables. One row per user, group, credential, refresh token, provider password,
-- MFA enrolment and onboarding step; `pos` keeps Home Assistant's list order for export.

CREATE TABLE stores (
    key text PRIMARY KEY,
    version integer NOT NULL,
    minor_version integer NOT NULL
);

CREATE TABLE auth_groups (
    id text PRIMARY KEY,
    pos bigserial NOT NULL,
    name text,
    policy json -- NULL: a system group (written without a policy)
);

CREATE TABLE auth_users (
    id text PRIMARY KEY,
    pos bigserial NOT NULL,
    name text,
    is_owner boolean NOT NULL,
    is_active boolean NOT NULL,
    system_generated boolean NOT NULL,
    local_only boolean NOT NULL,
    group_ids text[] NOT NULL
);

CREATE TABLE auth_credentials (
    id text PRIMARY KEY,
    pos bigserial NOT NULL,
    user_id text NOT NULL,
    auth_provider_type text NOT NULL,
    auth_provider_id text,
    data json NOT NULL
);

CREATE TABLE refresh_tokens (
    id text PRIMARY KEY,
    pos bigserial NOT NULL,
    user_id text NOT NULL,
    client_id text,
    client_name text,
    client_icon text,
    token_type text NOT NULL,
    created_at text NOT NULL,
    access_token_expiration double precision NOT NULL,
    token text NOT NULL,
    jwt_key text NOT NULL,
    last_used_at text,
    last_used_ip text,
    expire_at double precision,
    credential_id text,
    version text
);
CREATE INDEX refresh_tokens_user_id ON refresh_tokens (user_id);

CREATE TABLE provider_passwords (
    username text PRIMARY KEY,
    pos bigserial NOT NULL,
    password text NOT NULL
);

CREATE TABLE mfa_enrolments (
    module text NOT NULL,
    user_id text NOT NULL,
    pos bigserial NOT NULL,
    data json NOT NULL,
    PRIMARY KEY (module, user_id)
);

CREATE TABLE onboarding_steps (
    step text PRIMARY KEY,
    pos bigserial NOT NULL
);

-- Stores without tables of their own, whole.
CREATE TABLE documents (
    key text PRIMARY KEY,
    data json NOT NULL
);
