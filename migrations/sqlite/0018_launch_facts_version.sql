-- What a launch is decided on (the person, the site, the grants direct,
-- through teams and by elevation) has one version, moved by every change
-- to those tables. An instance that keeps a launch's facts in memory
-- records the launch only if the version is still the one it read them
-- at (checked in the transaction that writes the record): a change
-- anywhere, by any instance or the command line, makes it read them again.
CREATE TABLE launch_facts_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n INTEGER NOT NULL
);
INSERT INTO launch_facts_version (id, n) VALUES (1, 0);

CREATE TRIGGER people_ins_moves_launch_facts AFTER INSERT ON people
BEGIN UPDATE launch_facts_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER people_upd_moves_launch_facts AFTER UPDATE ON people
BEGIN UPDATE launch_facts_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER people_del_moves_launch_facts AFTER DELETE ON people
BEGIN UPDATE launch_facts_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER sites_ins_moves_launch_facts AFTER INSERT ON sites
BEGIN UPDATE launch_facts_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER sites_upd_moves_launch_facts AFTER UPDATE ON sites
BEGIN UPDATE launch_facts_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER sites_del_moves_launch_facts AFTER DELETE ON sites
BEGIN UPDATE launch_facts_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER grants_ins_moves_launch_facts AFTER INSERT ON grants
BEGIN UPDATE launch_facts_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER grants_upd_moves_launch_facts AFTER UPDATE ON grants
BEGIN UPDATE launch_facts_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER grants_del_moves_launch_facts AFTER DELETE ON grants
BEGIN UPDATE launch_facts_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER teams_ins_moves_launch_facts AFTER INSERT ON teams
BEGIN UPDATE launch_facts_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER teams_upd_moves_launch_facts AFTER UPDATE ON teams
BEGIN UPDATE launch_facts_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER teams_del_moves_launch_facts AFTER DELETE ON teams
BEGIN UPDATE launch_facts_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER team_members_ins_moves_launch_facts AFTER INSERT ON team_members
BEGIN UPDATE launch_facts_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER team_members_upd_moves_launch_facts AFTER UPDATE ON team_members
BEGIN UPDATE launch_facts_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER team_members_del_moves_launch_facts AFTER DELETE ON team_members
BEGIN UPDATE launch_facts_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER team_grants_ins_moves_launch_facts AFTER INSERT ON team_grants
BEGIN UPDATE launch_facts_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER team_grants_upd_moves_launch_facts AFTER UPDATE ON team_grants
BEGIN UPDATE launch_facts_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER team_grants_del_moves_launch_facts AFTER DELETE ON team_grants
BEGIN UPDATE launch_facts_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER elevations_ins_moves_launch_facts AFTER INSERT ON elevations
BEGIN UPDATE launch_facts_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER elevations_upd_moves_launch_facts AFTER UPDATE ON elevations
BEGIN UPDATE launch_facts_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER elevations_del_moves_launch_facts AFTER DELETE ON elevations
BEGIN UPDATE launch_facts_version SET n = n + 1 WHERE id = 1; END;
