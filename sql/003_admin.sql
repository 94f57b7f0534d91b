-- The admin pages: login sessions (a signed cookie names one; logging out
-- deletes it, so a copied cookie dies with the session), failed logins for
-- rate limiting, and the output cap setting.

CREATE TABLE admin_sessions (
    id         text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{32}$'),
    actor      text NOT NULL,
    addr       text,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    CHECK (expires_at > created_at)
);
CREATE INDEX admin_sessions_expires ON admin_sessions (expires_at);

CREATE TABLE admin_login_attempts (
    id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at   timestamptz NOT NULL DEFAULT now(),
    addr text NOT NULL,
    ok   boolean NOT NULL
);
CREATE INDEX admin_login_attempts_addr_at ON admin_login_attempts (addr, at);

-- '' means no cap beyond the reservation.
INSERT INTO settings (name, value) VALUES ('output_cap', '')
ON CONFLICT (name) DO NOTHING;
