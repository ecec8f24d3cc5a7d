-- What a launch is decided on (the person, the site, the grants direct,
-- through teams and by elevation) has one version, moved by every change
-- to those tables. An instance that keeps a launch's facts in memory
-- records the launch only if the version is still the one it read them
-- at (checked in the transaction that writes the record): a change
-- anywhere, by any instance or the command line, makes it read them again.
--
-- The version is moved at commit (deferred constraint triggers): the row
-- is then the last lock a writing transaction takes, after the rows it
-- changed and the audit chain's head, so it adds no lock-order cycle;
-- and a reader sees a change and its version move together or neither.
CREATE TABLE launch_facts_version (
    id integer PRIMARY KEY CHECK (id = 1),
    n bigint NOT NULL
);
INSERT INTO launch_facts_version (id, n) VALUES (1, 0);

CREATE FUNCTION launch_facts_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE launch_facts_version SET n = n + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER people_moves_launch_facts AFTER INSERT OR UPDATE OR DELETE ON people
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION launch_facts_moved();
CREATE CONSTRAINT TRIGGER sites_moves_launch_facts AFTER INSERT OR UPDATE OR DELETE ON sites
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION launch_facts_moved();
CREATE CONSTRAINT TRIGGER grants_moves_launch_facts AFTER INSERT OR UPDATE OR DELETE ON grants
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION launch_facts_moved();
CREATE CONSTRAINT TRIGGER teams_moves_launch_facts AFTER INSERT OR UPDATE OR DELETE ON teams
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION launch_facts_moved();
CREATE CONSTRAINT TRIGGER team_members_moves_launch_facts AFTER INSERT OR UPDATE OR DELETE ON team_members
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION launch_facts_moved();
CREATE CONSTRAINT TRIGGER team_grants_moves_launch_facts AFTER INSERT OR UPDATE OR DELETE ON team_grants
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION launch_facts_moved();
CREATE CONSTRAINT TRIGGER elevations_moves_launch_facts AFTER INSERT OR UPDATE OR DELETE ON elevations
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION launch_facts_moved();
