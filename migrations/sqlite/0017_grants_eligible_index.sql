-- Every staff home page asks where its person may ask for a higher role:
-- this reads only their eligible grants, not all of their (thousands of)
-- grants.
CREATE INDEX grants_eligible_idx ON grants (email) WHERE eligible_role IS NOT NULL;
