-- jobmgr schema, version 17: one queue index instead of two. Every claim
-- now reads the queue per job type through JobRun_queue_type (V12) and
-- merges the types in queue order (priority, then id), so the global
-- JobRun_queue only cost every enqueue and every claim one more index
-- entry to write and delete.
DROP INDEX JobRun_queue;
