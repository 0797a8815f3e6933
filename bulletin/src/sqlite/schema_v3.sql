-- v3: per-step load (todo tasks and how many of them are leased), kept by triggers, so a claim
-- can order steps by their empty rate (spec §10.3) in time proportional to the number of
-- steps with work, not to the number of queued tasks.
CREATE TABLE step_load (
    ns          TEXT    NOT NULL,
    job_name    TEXT    NOT NULL,
    trig        TEXT    NOT NULL,
    step_name   TEXT    NOT NULL,
    priority    INTEGER NOT NULL,
    type_order  INTEGER NOT NULL,
    todo        INTEGER NOT NULL,
    adopted     INTEGER NOT NULL,
    PRIMARY KEY (ns, job_name, trig, step_name)
);

INSERT INTO step_load (ns, job_name, trig, step_name, priority, type_order, todo, adopted)
SELECT ns, job_name, trig, step_name, MAX(priority), MAX(type_order), COUNT(*), SUM(lease_owner IS NOT NULL)
FROM tasks WHERE state = 'UNDONE' GROUP BY ns, job_name, trig, step_name;

CREATE INDEX tasks_claimable_by_step ON tasks (ns, job_name, trig, step_name, position)
    WHERE state = 'UNDONE' AND lease_owner IS NULL;

CREATE TRIGGER step_load_on_insert AFTER INSERT ON tasks WHEN NEW.state = 'UNDONE'
BEGIN
    INSERT INTO step_load (ns, job_name, trig, step_name, priority, type_order, todo, adopted)
    VALUES (NEW.ns, NEW.job_name, NEW.trig, NEW.step_name, NEW.priority, NEW.type_order, 1,
            NEW.lease_owner IS NOT NULL)
    ON CONFLICT (ns, job_name, trig, step_name)
    DO UPDATE SET todo = todo + 1, adopted = adopted + excluded.adopted;
END;

CREATE TRIGGER step_load_on_update AFTER UPDATE OF state, lease_owner ON tasks
WHEN (OLD.state = 'UNDONE') <> (NEW.state = 'UNDONE')
  OR (OLD.state = 'UNDONE' AND (OLD.lease_owner IS NULL) <> (NEW.lease_owner IS NULL))
BEGIN
    INSERT INTO step_load (ns, job_name, trig, step_name, priority, type_order, todo, adopted)
    VALUES (NEW.ns, NEW.job_name, NEW.trig, NEW.step_name, NEW.priority, NEW.type_order, 0, 0)
    ON CONFLICT (ns, job_name, trig, step_name) DO NOTHING;
    UPDATE step_load
    SET todo = todo + (NEW.state = 'UNDONE') - (OLD.state = 'UNDONE'),
        adopted = adopted + (NEW.state = 'UNDONE' AND NEW.lease_owner IS NOT NULL)
                          - (OLD.state = 'UNDONE' AND OLD.lease_owner IS NOT NULL)
    WHERE ns = NEW.ns AND job_name = NEW.job_name AND trig = NEW.trig AND step_name = NEW.step_name;
    DELETE FROM step_load
    WHERE ns = NEW.ns AND job_name = NEW.job_name AND trig = NEW.trig AND step_name = NEW.step_name AND todo <= 0;
END;

CREATE TRIGGER step_load_on_delete AFTER DELETE ON tasks WHEN OLD.state = 'UNDONE'
BEGIN
    UPDATE step_load SET todo = todo - 1, adopted = adopted - (OLD.lease_owner IS NOT NULL)
    WHERE ns = OLD.ns AND job_name = OLD.job_name AND trig = OLD.trig AND step_name = OLD.step_name;
    DELETE FROM step_load
    WHERE ns = OLD.ns AND job_name = OLD.job_name AND trig = OLD.trig AND step_name = OLD.step_name AND todo <= 0;
END;
