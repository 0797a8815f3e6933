-- v2: what the monitor needs as columns (slow jobs and tasks, §12), so it never parses bodies.
ALTER TABLE tasks ADD COLUMN create_time INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN duration INTEGER NULL;
ALTER TABLE jobs ADD COLUMN duration INTEGER NULL;
CREATE INDEX tasks_slow ON tasks (ns, create_time) WHERE state = 'UNDONE' AND duration IS NOT NULL;
