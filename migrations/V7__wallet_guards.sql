-- More of the wallet's rules held by the database itself (SPEC §5: enforced by SQL as well as
-- code).

-- The balance only ever takes the value of the newest ledger row: the ledger trigger's own update
-- passes, a direct edit does not.
CREATE TRIGGER workspaces_balance_follows_ledger
BEFORE UPDATE OF wallet_balance_minor ON workspaces
WHEN NEW.wallet_balance_minor <> COALESCE(
         (SELECT balance_after_minor FROM wallet_ledger
          WHERE workspace_id = NEW.id ORDER BY rowid DESC LIMIT 1), 0)
BEGIN
    SELECT RAISE(ABORT, 'the wallet balance changes only through the ledger');
END;

-- A wallet that has moved keeps its currency.
CREATE TRIGGER workspaces_currency_fixed_once_used
BEFORE UPDATE OF wallet_currency ON workspaces
WHEN NEW.wallet_currency <> OLD.wallet_currency
     AND EXISTS (SELECT 1 FROM wallet_ledger WHERE workspace_id = NEW.id)
BEGIN
    SELECT RAISE(ABORT, 'the wallet currency cannot change once the wallet has moved');
END;

-- Each kind moves money one way (adjustments either way).
CREATE TRIGGER wallet_ledger_sign_matches_kind
BEFORE INSERT ON wallet_ledger
WHEN (NEW.kind IN ('charge', 'plan_purchase') AND NEW.amount_minor >= 0)
  OR (NEW.kind IN ('topup', 'refund') AND NEW.amount_minor <= 0)
BEGIN
    SELECT RAISE(ABORT, 'ledger amount has the wrong sign for its kind');
END;
