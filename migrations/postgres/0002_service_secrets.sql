-- Secrets every replica must agree on (the secret header of each FHIR server's Subscriptions,
-- so whichever replica a notification reaches can check it).
CREATE TABLE service_secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
