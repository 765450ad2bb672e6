-- Acknowledged events stay as a local history (`portier events`, the demo
-- panel, an installer at the gateway) instead of vanishing at the PUBACK:
-- sent_at marks them, and the oldest sent ones are pruned to a bound.
ALTER TABLE outbox ADD COLUMN sent_at INTEGER;  -- unix milliseconds; NULL: not yet acknowledged
CREATE INDEX outbox_pending ON outbox (seq) WHERE sent_at IS NULL;
