-- The local mail sink: where the welcome-mail consumer "sends" e-mails. A real
-- deployment would hand them to an SMTP relay or a mail API instead; the sink keeps
-- them inspectable: SELECT * FROM users.mail_sink ORDER BY sent_at DESC;
CREATE TABLE mail_sink (
    id          uuid PRIMARY KEY,
    event_id    uuid NOT NULL UNIQUE,      -- the event that caused it
    to_address  text NOT NULL,
    subject     text NOT NULL,
    body        text NOT NULL,
    sent_at     timestamptz NOT NULL DEFAULT now()
);
