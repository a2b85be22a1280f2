-- Bulk Data exports, per server and scope (all patients or a group, with the types asked): the
-- export in flight (its status URL, so an interrupted sync polls it again instead of starting
-- over) and the last one completed (its transactionTime, the next export's `_since`).
CREATE TABLE bulk_exports (
    server           TEXT NOT NULL,
    scope            TEXT NOT NULL,
    status_url       TEXT,
    transaction_time TEXT,
    PRIMARY KEY (server, scope)
);
