-- SMS routing (docs/rules/messages.md, "Routing"): the route a message's number took when it was
-- created, as `MATCHED=PROVIDER,PROVIDER` (`+23767=avlytext,mboasms`, `CM=lmt`,
-- `default=twilio`; `test=log` for a test-mode SMS). The message and its estimate show it; the
-- dispatcher sends by that route's chain while the configuration still has it. NULL for email
-- and for messages created before routing.
ALTER TABLE messages ADD COLUMN route TEXT;
