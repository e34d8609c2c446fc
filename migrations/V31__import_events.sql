-- Outgoing webhooks (docs/design/webhooks.md): a contact import that completes is the event
-- `import.completed`, recorded in the transaction that ends it, like the events of V30, and only
-- while the workspace has a webhook endpoint in the import's mode.

CREATE TRIGGER events_import_completed
AFTER UPDATE OF status ON contact_imports
WHEN NEW.status <> OLD.status AND NEW.status = 'completed'
 AND EXISTS (SELECT 1 FROM webhook_endpoints
             WHERE workspace_id = NEW.workspace_id AND mode = NEW.mode)
BEGIN
    INSERT INTO events (workspace_id, mode, type, object_id, created_at)
    VALUES (NEW.workspace_id, NEW.mode, 'import.completed', NEW.id, NEW.updated_at);
END;
