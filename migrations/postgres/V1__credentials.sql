-- Credentials and OAuth apps, sealed with AES-256-GCM (src/auth/postgres.rs): `key_id` names
-- the key a row is sealed under, `nonce` is its random 96-bit nonce, `ciphertext` the sealed
-- JSON in guMCP's shape with its tag. Only the expiry is in the clear.
CREATE TABLE gumcp_credentials (
    service     text        NOT NULL,
    user_id     text        NOT NULL,
    key_id      text        NOT NULL,
    nonce       bytea       NOT NULL,
    ciphertext  bytea       NOT NULL,
    expires_at  bigint,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, user_id)
);

-- `auth rekey` looks for rows not under the newest key.
CREATE INDEX gumcp_credentials_key_id ON gumcp_credentials (key_id);

CREATE TABLE gumcp_oauth_apps (
    service     text        PRIMARY KEY,
    key_id      text        NOT NULL,
    nonce       bytea       NOT NULL,
    ciphertext  bytea       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
