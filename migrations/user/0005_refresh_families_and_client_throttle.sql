-- Refresh-token families get a row of their own, and failed logins are also counted
-- per client.

-- A family is one login. Its row is what rotation, logout and reuse-revocation lock
-- (FOR UPDATE) before touching its tokens, so a revocation can never miss a token
-- that a concurrent refresh is about to add. `expires_at` is the absolute end of the
-- login: no token of the family is accepted after it, however recently refreshed.
CREATE TABLE refresh_families (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX refresh_families_user_idx ON refresh_families (user_id);
CREATE INDEX refresh_families_expires_idx ON refresh_families (expires_at);
CREATE INDEX refresh_families_revoked_idx ON refresh_families (revoked_at)
    WHERE revoked_at IS NOT NULL;

-- Existing logins become families with the default lifetime (90 days from the
-- login), but never less than their newest token's, so nobody is logged out by the
-- upgrade. A family any of whose tokens was revoked is revoked (revocation always
-- covered the whole family; a token that survived it did so by the race this fixes).
INSERT INTO refresh_families (id, user_id, created_at, expires_at, revoked_at)
SELECT family_id,
       (array_agg(user_id))[1],
       min(created_at),
       greatest(min(created_at) + interval '90 days', max(expires_at)),
       max(revoked_at)
FROM refresh_tokens
GROUP BY family_id;

ALTER TABLE refresh_tokens
    ADD CONSTRAINT refresh_tokens_family_fkey
    FOREIGN KEY (family_id) REFERENCES refresh_families (id) ON DELETE CASCADE;
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);

-- Failed logins per client (an IPv4 address, or an IPv6 /64) across all e-mails, in a
-- fixed window. A success gives its attempt back.
CREATE TABLE login_client_failures (
    client            text PRIMARY KEY,
    failures          integer NOT NULL,
    window_started_at timestamptz NOT NULL
);
