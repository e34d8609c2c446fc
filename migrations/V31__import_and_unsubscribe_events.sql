-- Outgoing webhooks (docs/design/webhooks.md): more events recorded in the transaction of the
-- change, like those of V30, and only while the workspace has a webhook endpoint in the mode.

-- A contact import that completes: `import.completed`.
CREATE TRIGGER events_import_completed
AFTER UPDATE OF status ON contact_imports
WHEN NEW.status <> OLD.status AND NEW.status = 'completed'
 AND EXISTS (SELECT 1 FROM webhook_endpoints
             WHERE workspace_id = NEW.workspace_id AND mode = NEW.mode)
BEGIN
    INSERT INTO events (workspace_id, mode, type, object_id, created_at)
    VALUES (NEW.workspace_id, NEW.mode, 'import.completed', NEW.id, NEW.updated_at);
END;

-- A contact who unsubscribes from SMS or email (a link, a STOP keyword, a complaint, the API):
-- `contact.unsubscribed`, at the time of the unsubscription.
CREATE TRIGGER events_contact_unsubscribed
AFTER UPDATE OF sms_unsubscribed_at, email_unsubscribed_at ON contacts
WHEN ((NEW.sms_unsubscribed_at IS NOT NULL AND OLD.sms_unsubscribed_at IS NULL)
      OR (NEW.email_unsubscribed_at IS NOT NULL AND OLD.email_unsubscribed_at IS NULL))
 AND EXISTS (SELECT 1 FROM webhook_endpoints
             WHERE workspace_id = NEW.workspace_id AND mode = NEW.mode)
BEGIN
    INSERT INTO events (workspace_id, mode, type, object_id, created_at)
    VALUES (NEW.workspace_id, NEW.mode, 'contact.unsubscribed', NEW.id,
            CASE WHEN NEW.sms_unsubscribed_at IS NOT NULL AND OLD.sms_unsubscribed_at IS NULL
                 THEN NEW.sms_unsubscribed_at ELSE NEW.email_unsubscribed_at END);
END;
