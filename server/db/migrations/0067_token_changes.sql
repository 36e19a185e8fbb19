-- The token cache (server/auth/token-cache.ts) is told by the database: every committed change to what a token lookup
-- reads (tokens, identities, team memberships, domain grants), by the control plane or by an operator's SQL, notifies
-- channel `atelier_token_changes` with the identities concerned (comma-separated ids), or `*` (forget every session)
-- past 100 identities or on TRUNCATE. Statement-level triggers with transition tables: one notification per statement.
CREATE FUNCTION atelier_token_change_notify(ids uuid[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF ids IS NULL OR cardinality(ids) = 0 THEN
    RETURN;
  ELSIF cardinality(ids) > 100 THEN
    PERFORM pg_notify('atelier_token_changes', '*');
  ELSE
    PERFORM pg_notify('atelier_token_changes', array_to_string(ids, ','));
  END IF;
END $$;
--> statement-breakpoint
CREATE FUNCTION atelier_token_change_all() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('atelier_token_changes', '*');
  RETURN NULL;
END $$;
--> statement-breakpoint
-- A token's row as the lookup reads it; an inserted token changes no remembered session (only live ones are kept), and
-- a deleted one that had expired or was revoked was never served from memory (the pruning of expired task tokens).
CREATE FUNCTION atelier_tokens_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    PERFORM atelier_token_change_notify(array(
      SELECT DISTINCT x FROM old_rows o JOIN new_rows n ON n.id = o.id, unnest(ARRAY[o.identity_id, n.identity_id]) x
      WHERE (o.identity_id, o.hash, o.expires_at, o.revoked_at, o.scopes, o.task_id, o.task_attempt, o.chosen)
        IS DISTINCT FROM (n.identity_id, n.hash, n.expires_at, n.revoked_at, n.scopes, n.task_id, n.task_attempt, n.chosen)));
  ELSE
    PERFORM atelier_token_change_notify(array(
      SELECT DISTINCT o.identity_id FROM old_rows o WHERE o.revoked_at IS NULL AND (o.expires_at IS NULL OR o.expires_at > now())));
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER tokens_changed_update AFTER UPDATE ON tokens REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION atelier_tokens_changed();
--> statement-breakpoint
CREATE TRIGGER tokens_changed_delete AFTER DELETE ON tokens REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION atelier_tokens_changed();
--> statement-breakpoint
CREATE TRIGGER tokens_changed_truncate AFTER TRUNCATE ON tokens FOR EACH STATEMENT EXECUTE FUNCTION atelier_token_change_all();
--> statement-breakpoint
-- The lookup reads the whole identity row; a new identity has no session yet.
CREATE FUNCTION atelier_identities_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    PERFORM atelier_token_change_notify(array(
      SELECT DISTINCT o.id FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE to_jsonb(o) IS DISTINCT FROM to_jsonb(n)));
  ELSE
    PERFORM atelier_token_change_notify(array(SELECT DISTINCT o.id FROM old_rows o));
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER identities_changed_update AFTER UPDATE ON identities REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION atelier_identities_changed();
--> statement-breakpoint
CREATE TRIGGER identities_changed_delete AFTER DELETE ON identities REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION atelier_identities_changed();
--> statement-breakpoint
CREATE TRIGGER identities_changed_truncate AFTER TRUNCATE ON identities FOR EACH STATEMENT EXECUTE FUNCTION atelier_token_change_all();
--> statement-breakpoint
-- A membership (its team, its role) decides which grants a member's tokens carry.
CREATE FUNCTION atelier_team_members_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM atelier_token_change_notify(array(SELECT DISTINCT n.identity_id FROM new_rows n));
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM atelier_token_change_notify(array(SELECT DISTINCT o.identity_id FROM old_rows o));
  ELSE
    PERFORM atelier_token_change_notify(array(
      SELECT o.identity_id FROM (SELECT * FROM old_rows EXCEPT SELECT * FROM new_rows) o
      UNION SELECT n.identity_id FROM (SELECT * FROM new_rows EXCEPT SELECT * FROM old_rows) n));
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER team_members_changed_insert AFTER INSERT ON team_members REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION atelier_team_members_changed();
--> statement-breakpoint
CREATE TRIGGER team_members_changed_update AFTER UPDATE ON team_members REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION atelier_team_members_changed();
--> statement-breakpoint
CREATE TRIGGER team_members_changed_delete AFTER DELETE ON team_members REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION atelier_team_members_changed();
--> statement-breakpoint
CREATE TRIGGER team_members_changed_truncate AFTER TRUNCATE ON team_members FOR EACH STATEMENT EXECUTE FUNCTION atelier_token_change_all();
--> statement-breakpoint
-- A team's grants are carried by the tokens of its members.
CREATE FUNCTION atelier_domain_grants_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM atelier_token_change_notify(array(
      SELECT DISTINCT m.identity_id FROM team_members m WHERE m.team_id IN (SELECT n.team_id FROM new_rows n)));
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM atelier_token_change_notify(array(
      SELECT DISTINCT m.identity_id FROM team_members m WHERE m.team_id IN (SELECT o.team_id FROM old_rows o)));
  ELSE
    PERFORM atelier_token_change_notify(array(
      SELECT DISTINCT m.identity_id FROM team_members m
      WHERE m.team_id IN (SELECT o.team_id FROM old_rows o UNION SELECT n.team_id FROM new_rows n)));
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER domain_grants_changed_insert AFTER INSERT ON domain_grants REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION atelier_domain_grants_changed();
--> statement-breakpoint
CREATE TRIGGER domain_grants_changed_update AFTER UPDATE ON domain_grants REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION atelier_domain_grants_changed();
--> statement-breakpoint
CREATE TRIGGER domain_grants_changed_delete AFTER DELETE ON domain_grants REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION atelier_domain_grants_changed();
--> statement-breakpoint
CREATE TRIGGER domain_grants_changed_truncate AFTER TRUNCATE ON domain_grants FOR EACH STATEMENT EXECUTE FUNCTION atelier_token_change_all();
