-- Aurora PostgreSQL's SQL functions on the local twin only (never on AWS, where Aurora has its
-- own). Names, arguments and result columns follow AWS's reference:
-- https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora_replica_status.html and
-- https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraPostgreSQL.Managing.FaultInjectionQueries.html
-- Aurora's functions are built in, so they go into pg_catalog (callable with no schema, left out
-- of pg_dump); their helpers into the schema aurora. The supervisor runs this file as its
-- superuser on the writer at every start; it replicates to
-- the readers. {{VERSION}} is replaced by the engine version.
CREATE SCHEMA IF NOT EXISTS aurora;
REVOKE ALL ON SCHEMA aurora FROM PUBLIC;
GRANT USAGE ON SCHEMA aurora TO PUBLIC;

-- The cluster's instances and roles, kept by the supervisor (aurora_topology.go); on a reader it
-- is what the writer last wrote.
CREATE TABLE IF NOT EXISTS aurora.topology (
	server_id  text PRIMARY KEY,
	is_writer  boolean NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON aurora.topology FROM PUBLIC;

CREATE OR REPLACE FUNCTION pg_catalog.aurora_version() RETURNS text
	LANGUAGE sql STABLE AS $$ SELECT '{{VERSION}}'::text $$;

-- The instance's name: cluster_name, which the supervisor sets to it in each postgresql.conf,
-- so it is right on a reader and after a failover.
CREATE OR REPLACE FUNCTION pg_catalog.aurora_db_instance_identifier() RETURNS text
	LANGUAGE sql STABLE AS $$ SELECT current_setting('cluster_name') $$;

-- A reader's session_id: a UUID stable for the instance.
CREATE OR REPLACE FUNCTION aurora.reader_session_id(server_id text) RETURNS text
	LANGUAGE sql IMMUTABLE AS $$ SELECT md5('apgstack-reader:' || server_id)::uuid::text $$;

CREATE OR REPLACE FUNCTION aurora.lsn(l pg_lsn) RETURNS bigint
	LANGUAGE sql IMMUTABLE AS $$ SELECT (l - '0/0'::pg_lsn)::bigint $$;

DROP FUNCTION IF EXISTS pg_catalog.aurora_replica_status();
-- One row per instance. On the writer, the readers' rows come from pg_stat_replication; on a
-- reader, its own row from its WAL receiver and replay, the others' from aurora.topology (NULL
-- where a reader cannot know). Columns Aurora's storage layer has and PostgreSQL has not are NULL.
CREATE FUNCTION pg_catalog.aurora_replica_status() RETURNS TABLE (
	server_id text, session_id text, durable_lsn bigint, highest_lsn_rcvd bigint,
	current_read_lsn bigint, cur_replay_latency_in_usec bigint, active_txns bigint,
	is_current boolean, last_transport_error integer, last_error_timestamp timestamptz,
	last_update_timestamp timestamptz, feedback_xmin bigint, feedback_epoch integer,
	replica_lag_in_msec real, log_stream_speed_in_kib_per_second double precision,
	log_buffer_sequence_number bigint, oldest_read_view_trx_id bigint, oldest_read_view_lsn bigint,
	pending_read_ios bigint, read_ios bigint, iops bigint, cpu real)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	WITH me AS (SELECT current_setting('cluster_name') AS name, pg_is_in_recovery() AS reader),
	active AS (SELECT count(*) AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND state <> 'idle' AND backend_xid IS NOT NULL)
	-- the writer, seen from itself
	SELECT me.name, 'MASTER_SESSION_ID', aurora.lsn(pg_current_wal_flush_lsn()), NULL::bigint,
		NULL::bigint, NULL::bigint, (SELECT n FROM active), true, NULL::integer, NULL::timestamptz,
		now(), NULL::bigint, NULL::integer, NULL::real, NULL::double precision,
		NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::real
	FROM me WHERE NOT me.reader
	UNION ALL
	-- the readers, seen from the writer: lag is 0 once everything is replayed, else the longer of
	-- the measured replay lag and the time since the reader last answered (it grows while the
	-- reader receives nothing)
	SELECT t.server_id, aurora.reader_session_id(t.server_id), aurora.lsn(r.replay_lsn), aurora.lsn(r.write_lsn),
		NULL, (extract(epoch FROM r.replay_lag) * 1e6)::bigint, NULL, false, NULL, NULL,
		r.reply_time, r.backend_xmin::text::bigint, NULL,
		CASE WHEN r.pid IS NULL THEN NULL
			WHEN r.replay_lsn >= pg_current_wal_lsn() THEN 0
			ELSE (1000 * greatest(extract(epoch FROM r.replay_lag), extract(epoch FROM now() - r.reply_time), 0))::real END,
		NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
	FROM me, aurora.topology t LEFT JOIN pg_stat_replication r ON r.application_name = t.server_id
	WHERE NOT me.reader AND NOT t.is_writer
	UNION ALL
	-- the writer, seen from a reader
	SELECT t.server_id, 'MASTER_SESSION_ID', aurora.lsn(pg_last_wal_receive_lsn()), NULL,
		NULL, NULL, NULL, true, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
	FROM me, aurora.topology t WHERE me.reader AND t.is_writer
	UNION ALL
	-- this reader, seen from itself
	SELECT me.name, aurora.reader_session_id(me.name), aurora.lsn(pg_last_wal_replay_lsn()), aurora.lsn(pg_last_wal_receive_lsn()),
		NULL, NULL, (SELECT n FROM active), false, NULL, NULL, (SELECT w.last_msg_receipt_time FROM pg_stat_wal_receiver w),
		NULL, NULL,
		CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
			ELSE (1000 * extract(epoch FROM now() - pg_last_xact_replay_timestamp()))::real END,
		NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
	FROM me WHERE me.reader
	UNION ALL
	-- the other readers, seen from a reader: known by name only
	SELECT t.server_id, aurora.reader_session_id(t.server_id), NULL, NULL, NULL, NULL, NULL, false,
		NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
	FROM me, aurora.topology t WHERE me.reader AND NOT t.is_writer AND t.server_id <> me.name
$$;

-- Fault injection. A request reaches the supervisor this way (it works on a hot standby, where
-- nothing can be written): the calling session names the fault in its application_name and
-- takes a session advisory lock (class 1095782480, the pid); the supervisor's watcher
-- (aurora_inject.go) sees the lock in pg_locks, checks in pg_stat_activity that the session's
-- login role is a member of rds_superuser, acts, and answers by taking the lock (1095782481 ok,
-- 1095782482 refused, 1095782483 failed; the pid), which this function waits for.
--
-- Why it is safe: EXECUTE is revoked from PUBLIC and granted to rds_superuser only, and the
-- function is SECURITY INVOKER, so it gives nothing a caller does not have. Anyone may take an
-- advisory lock and set an application_name, so the supervisor does not trust either: it acts
-- only for a session whose authenticated role (pg_stat_activity.usesysid, which the session
-- cannot change) is a member of rds_superuser, the roles Aurora allows to inject faults. The
-- answer locks are taken by the supervisor's superuser session; another session taking them
-- could only make a caller believe its own request was answered.
-- Raises permission denied for a role that may not inject faults (its ACL says who may).
CREATE OR REPLACE FUNCTION aurora.may_inject() RETURNS void
	LANGUAGE sql VOLATILE AS $$ SELECT $$;

CREATE OR REPLACE FUNCTION aurora.request_fault(request text, wait_for_answer boolean) RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	old_name text := current_setting('application_name');
	answer integer;
BEGIN
	PERFORM set_config('application_name', left('apgstack-inject ' || request, 63), false);
	PERFORM pg_advisory_lock(1095782480, pg_backend_pid());
	FOR i IN 1..300 LOOP -- up to 30 s
		SELECT l.classid::integer INTO answer FROM pg_locks l
			WHERE l.locktype = 'advisory' AND l.classid IN (1095782481, 1095782482, 1095782483)
			AND l.objid = pg_backend_pid() AND l.granted LIMIT 1;
		EXIT WHEN answer IS NOT NULL;
		PERFORM pg_sleep(0.1);
	END LOOP;
	PERFORM pg_advisory_unlock(1095782480, pg_backend_pid());
	PERFORM set_config('application_name', old_name, false);
	-- The supervisor releases its answer once the request is gone; wait for that, so that this
	-- session's next request is not taken as answered already.
	FOR i IN 1..100 LOOP -- up to 10 s
		EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory'
			AND l.classid IN (1095782481, 1095782482, 1095782483) AND l.objid = pg_backend_pid());
		PERFORM pg_sleep(0.05);
	END LOOP;
	IF answer IS NULL THEN
		RAISE EXCEPTION 'fault injection: the twin''s supervisor did not answer within 30 s';
	ELSIF answer = 1095782482 THEN
		RAISE EXCEPTION 'fault injection: permission denied: only members of rds_superuser may inject faults'
			USING ERRCODE = 'insufficient_privilege';
	ELSIF answer = 1095782483 THEN
		RAISE EXCEPTION 'fault injection failed: see apgstack events';
	END IF;
	RETURN 'Success';
END $$;

CREATE OR REPLACE FUNCTION pg_catalog.aurora_inject_crash(crash_type text) RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM aurora.may_inject();
	IF crash_type IS NULL OR lower(crash_type) NOT IN ('instance', 'dispatcher', 'node') THEN
		RAISE EXCEPTION 'aurora_inject_crash: crash_type %: instance, dispatcher or node allowed', coalesce(crash_type, 'NULL');
	END IF;
	RETURN aurora.request_fault('crash ' || lower(crash_type), true);
END $$;

CREATE OR REPLACE FUNCTION pg_catalog.aurora_inject_replica_failure(failure_percentage double precision, time_interval integer, replica_name text) RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM aurora.may_inject();
	IF failure_percentage IS NULL OR failure_percentage < 0 OR failure_percentage > 100 THEN
		RAISE EXCEPTION 'aurora_inject_replica_failure: failure_percentage %: 0 to 100 allowed', coalesce(failure_percentage::text, 'NULL');
	END IF;
	IF time_interval IS NULL OR time_interval < 1 OR time_interval > 3600 THEN
		RAISE EXCEPTION 'aurora_inject_replica_failure: time_interval %: 1 to 3600 seconds allowed', coalesce(time_interval::text, 'NULL');
	END IF;
	IF replica_name IS NULL OR replica_name !~ '^[A-Za-z0-9-]{1,40}$' THEN
		RAISE EXCEPTION 'aurora_inject_replica_failure: replica_name %: an instance name allowed', coalesce(replica_name, 'NULL');
	END IF;
	IF failure_percentage = 0 THEN
		RETURN 'Success';
	END IF;
	RETURN aurora.request_fault('stall ' || time_interval || ' ' || replica_name, true);
END $$;

-- Aurora's storage-volume faults: the twin's storage is a local disk that cannot be made to fail
-- or slow down for one server, so these are refused (the README says so).
CREATE OR REPLACE FUNCTION pg_catalog.aurora_inject_disk_failure(failure_percentage double precision, index integer, is_disk boolean, time_interval integer) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
	PERFORM aurora.may_inject();
	RAISE EXCEPTION 'aurora_inject_disk_failure: not simulated on the local twin (its storage is a local disk); use apgstack chaos or aurora_inject_crash'
		USING ERRCODE = 'feature_not_supported';
END $$;

CREATE OR REPLACE FUNCTION pg_catalog.aurora_inject_disk_congestion(failure_percentage double precision, minimum integer, maximum integer, index integer, is_disk boolean, time_interval integer) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
	PERFORM aurora.may_inject();
	RAISE EXCEPTION 'aurora_inject_disk_congestion: not simulated on the local twin (its storage is a local disk); use apgstack chaos hang-writer'
		USING ERRCODE = 'feature_not_supported';
END $$;

-- Who may inject faults is decided by the ACLs of the helpers in the schema aurora, which every
-- fault function calls first: ACLs changed on functions in pg_catalog would be dumped by pg_dump
-- (and by pg_upgrade) as GRANTs on functions a restored cluster does not have.
REVOKE EXECUTE ON FUNCTION aurora.request_fault(text, boolean), aurora.may_inject() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aurora.request_fault(text, boolean), aurora.may_inject() TO rds_superuser;
