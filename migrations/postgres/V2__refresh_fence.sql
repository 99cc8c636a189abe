-- The fence of the last refresh saved (src/cluster/refresh_lock.rs): a node saves refreshed
-- credentials only with a fence greater than this, so a node that lost its refresh lock never
-- saves over what a later holder saved. 0: no fenced save yet.
ALTER TABLE gumcp_credentials ADD COLUMN refresh_fence bigint NOT NULL DEFAULT 0;
