-- The user service's schema (`users`): accounts, refresh-token families and the
-- per-account login throttle. Applied by the service at start-up; never edited once
-- released: change it with a new numbered file.

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    -- Stored lower-cased and trimmed, so uniqueness is case-insensitive.
    email         text NOT NULL CONSTRAINT users_email_key UNIQUE,
    name          text NOT NULL,
    -- PHC string: $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
    password_hash text NOT NULL,
    roles         text[] NOT NULL DEFAULT ARRAY['customer'],
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_roles_known CHECK (roles <@ ARRAY['customer', 'admin'])
);

-- Refresh tokens are stored only as SHA-256 hashes. Each login starts a family; every
-- refresh spends one token and adds the next to the same family. Presenting a spent
-- token again means it was stolen (or replayed), and the whole family is revoked.
CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY,
    family_id   uuid NOT NULL,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL CONSTRAINT refresh_tokens_hash_key UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

-- Failed logins per e-mail (whether or not an account exists, so the throttle itself
-- reveals nothing). A row disappears on a successful login.
CREATE TABLE login_failures (
    email             text PRIMARY KEY,
    failures          integer NOT NULL,
    window_started_at timestamptz NOT NULL,
    locked_until      timestamptz
);
