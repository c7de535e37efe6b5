"""Every documented Celery setting, and what conveyor does with it: one table.

Each row is one setting under its lowercase name, with its old uppercase names (read from
Celery 3 config modules, and with ``namespace="CELERY"`` the Django-style
``CELERY_<NAME>``), Celery's default, and one of three verdicts:

* honoured: conveyor code reads it (its default is conveyor's, in config.DEFAULTS);
* not needed: conveyor meets the setting's purpose by design, so any value is accepted;
  setting it logs the reason once, at INFO;
* refused: conveyor cannot do what the setting asks. Setting it to Celery's default is
  harmless (a config module that lists everything still loads); any other value raises
  ConfigurationError naming the setting, the reason and what to do instead.

docs/celery.md's settings section is this table (`markdown_table()`); a test keeps the two
in step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from conveyor.core.errors import ConfigurationError

log = logging.getLogger("conveyor.config")

HONOURED = "honoured"
NOT_NEEDED = "not needed"
REFUSED = "refused"


class RefusedSetting(ConfigurationError):
    """A Celery setting conveyor cannot honour, set to a value other than Celery's default."""


@dataclass(frozen=True, slots=True)
class CelerySetting:
    name: str
    default: Any
    verdict: str
    note: str
    old: tuple[str, ...]


def _h(name: str, default: Any, *old: str, note: str = "") -> CelerySetting:
    return CelerySetting(name, default, HONOURED, note, old)


def _n(name: str, default: Any, why: str, *old: str) -> CelerySetting:
    return CelerySetting(name, default, NOT_NEEDED, why, old)


def _r(name: str, default: Any, why: str, *old: str) -> CelerySetting:
    return CelerySetting(name, default, REFUSED, why, old)


_URL = "put it in the broker URL (docs/transports.md lists each transport's query options)"
_BACKEND_URL = "put it in the result backend URL's query string"
_NO_AMQP_TOPOLOGY = (
    "conveyor has one direct exchange whose routing keys are queue names; route with "
    "task_routes and queue="
)
_OTHER_BACKEND = (
    "conveyor has no such result backend (memory, redis, memcached, SQL); see docs/backends.md"
)
_JSON_RESULTS = "results are stored as JSON records, so a result is always JSON"
_SIGNED = "message signing is not offered; use TLS URLs (amqps://, rediss://) and accept_content"

TABLE: tuple[CelerySetting, ...] = (
    # -- general, time -------------------------------------------------------------------
    _h("accept_content", ["json"], "CELERY_ACCEPT_CONTENT"),
    _r("result_accept_content", None, _JSON_RESULTS),
    _h("enable_utc", True, "CELERY_ENABLE_UTC", note="wire times are always UTC"),
    _h("timezone", "UTC", "CELERY_TIMEZONE", note="naive eta/expires and schedules read in it"),
    # -- tasks ---------------------------------------------------------------------------
    _h("task_annotations", None, "CELERY_ANNOTATIONS", note="names, glob patterns or annotate()"),
    _h("task_compression", None, "CELERY_COMPRESSION", "CELERY_MESSAGE_COMPRESSION"),
    _n(
        "task_protocol",
        2,
        "conveyor has one wire format (docs/protocol.md)",
        "CELERY_TASK_PROTOCOL",
    ),
    _h("task_serializer", "json", "CELERY_TASK_SERIALIZER"),
    _n("task_args_repr_function", None, "conveyor logs task names and ids, never arguments"),
    _h("task_publish_retry", True, "CELERY_PUBLISH_RETRY", "CELERY_TASK_PUBLISH_RETRY"),
    _h(
        "task_publish_retry_policy",
        {"max_retries": 3, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2},
        "CELERY_PUBLISH_RETRY_POLICY",
        "CELERY_TASK_PUBLISH_RETRY_POLICY",
        note="unset, conveyor's own backoff (20 s budget) applies",
    ),
    _h("task_always_eager", False, "CELERY_ALWAYS_EAGER", "CELERY_TASK_ALWAYS_EAGER"),
    _h(
        "task_eager_propagates",
        False,
        "CELERY_EAGER_PROPAGATES",
        "CELERY_EAGER_PROPAGATES_EXCEPTIONS",
    ),
    _h("task_store_eager_result", False),
    _n("task_remote_tracebacks", False, "the worker's traceback text is always stored"),
    _h("task_ignore_result", False, "CELERY_IGNORE_RESULT"),
    _h(
        "task_store_errors_even_if_ignored",
        False,
        "CELERY_STORE_ERRORS_EVEN_IF_IGNORED",
    ),
    _h("task_track_started", False, "CELERY_TRACK_STARTED", "CELERY_TASK_TRACK_STARTED"),
    _h("task_time_limit", None, "CELERYD_TASK_TIME_LIMIT", "CELERYD_TIME_LIMIT"),
    _h("task_soft_time_limit", None, "CELERYD_TASK_SOFT_TIME_LIMIT", "CELERYD_SOFT_TIME_LIMIT"),
    _r(
        "task_allow_error_cb_on_chord_header",
        False,
        "chord error callbacks follow docs/canvas.md",
        "CELERY_ALLOW_ERROR_CB_ON_CHORD_HEADER",
    ),
    _h(
        "task_acks_late",
        False,
        "CELERY_ACKS_LATE",
        note="conveyor's default is True (at-least-once); False is the at-most-once opt-out",
    ),
    _r(
        "task_acks_on_failure_or_timeout",
        True,
        "a failed task's message is always acked once its FAILURE is stored",
        "CELERY_ACKS_ON_FAILURE_OR_TIMEOUT",
    ),
    _h("task_reject_on_worker_lost", None, "CELERY_TASK_REJECT_ON_WORKER_LOST"),
    _h("task_default_rate_limit", None, "CELERY_DEFAULT_RATE_LIMIT"),
    # -- results -------------------------------------------------------------------------
    _h("result_backend", None, "CELERY_RESULT_BACKEND"),
    _n(
        "result_backend_always_retry",
        False,
        "backends retry connection errors within their own budget",
    ),
    _n("result_backend_max_sleep_between_retries_ms", 10000, "backends pace their own retries"),
    _n("result_backend_base_sleep_between_retries_ms", 10, "backends pace their own retries"),
    _n("result_backend_max_retries", float("inf"), "backends pace their own retries"),
    _n("result_backend_thread_safe", False, "every conveyor backend is thread-safe"),
    _r("result_backend_transport_options", {}, _BACKEND_URL),
    _r("result_serializer", "json", _JSON_RESULTS, "CELERY_RESULT_SERIALIZER"),
    _r("result_compression", None, "results are stored uncompressed"),
    _h("result_extended", False),
    _h("result_expires", 86400, "CELERY_TASK_RESULT_EXPIRES", "CELERY_RESULT_EXPIRES"),
    _n(
        "result_cache_max",
        -1,
        "a ready result is cached in its AsyncResult",
        "CELERY_MAX_CACHED_RESULTS",
    ),
    _n("result_chord_join_timeout", 3.0, "chords are joined by atomic counters in the backend"),
    _n("result_chord_retry_interval", 1.0, "chords are joined by atomic counters in the backend"),
    _r("override_backends", None, "backends are plugins: entry-point group conveyor.backends"),
    _r("result_persistent", None, "there is no RPC backend", "CELERY_RESULT_PERSISTENT"),
    _r("result_exchange", "celeryresults", "there is no RPC backend", "CELERY_RESULT_EXCHANGE"),
    _r("result_exchange_type", "direct", "there is no RPC backend", "CELERY_RESULT_EXCHANGE_TYPE"),
    _r("database_engine_options", {}, _BACKEND_URL, "CELERY_RESULT_ENGINE_OPTIONS"),
    _n(
        "database_short_lived_sessions",
        False,
        "the SQL backend uses a pooled engine",
        "CELERY_RESULT_DB_SHORT_LIVED_SESSIONS",
    ),
    _r("database_table_schemas", {}, "the SQL backend owns its schema"),
    _r(
        "database_table_names",
        {},
        "the SQL backend owns its table names",
        "CELERY_RESULT_DB_TABLE_NAMES",
    ),
    _n("database_create_tables_at_setup", True, "the SQL backend creates its tables on first use"),
    _r("cache_backend", None, "use result_backend='memcached://host:port'", "CELERY_CACHE_BACKEND"),
    _r("cache_backend_options", {}, _BACKEND_URL, "CELERY_CACHE_BACKEND_OPTIONS"),
    _r("redis_host", None, "use result_backend='redis://host:port/db'", "CELERY_REDIS_HOST"),
    _r("redis_port", None, "use result_backend='redis://host:port/db'", "CELERY_REDIS_PORT"),
    _r("redis_db", None, "use result_backend='redis://host:port/db'", "CELERY_REDIS_DB"),
    _r("redis_username", None, "put it in the result backend URL", "CELERY_REDIS_USERNAME"),
    _r("redis_password", None, "put it in the result backend URL", "CELERY_REDIS_PASSWORD"),
    _r("redis_max_connections", None, _BACKEND_URL, "CELERY_REDIS_MAX_CONNECTIONS"),
    _r("redis_backend_use_ssl", None, "use a rediss:// URL", "CELERY_REDIS_BACKEND_USE_SSL"),
    _r("redis_backend_health_check_interval", 0, _BACKEND_URL),
    _r("redis_socket_connect_timeout", None, _BACKEND_URL + " (connect_timeout)"),
    _r("redis_socket_timeout", 120.0, _BACKEND_URL + " (timeout)"),
    _n("redis_retry_on_timeout", False, "the Redis backend retries within its own budget"),
    _n("redis_socket_keepalive", False, "the Redis backend keeps its connections alive"),
    _r("mongodb_backend_settings", None, _OTHER_BACKEND, "CELERY_MONGODB_BACKEND_SETTINGS"),
    _r("couchbase_backend_settings", None, _OTHER_BACKEND, "CELERY_COUCHBASE_BACKEND_SETTINGS"),
    _r("arangodb_backend_settings", None, _OTHER_BACKEND, "CELERY_ARANGODB_BACKEND_SETTINGS"),
    *(
        _r(name, None, _OTHER_BACKEND, old)
        for name, old in (
            ("cassandra_servers", "CASSANDRA_SERVERS"),
            ("cassandra_port", "CASSANDRA_PORT"),
            ("cassandra_keyspace", "CASSANDRA_KEYSPACE"),
            ("cassandra_table", "CASSANDRA_COLUMN_FAMILY"),
            ("cassandra_read_consistency", "CASSANDRA_READ_CONSISTENCY"),
            ("cassandra_write_consistency", "CASSANDRA_WRITE_CONSISTENCY"),
            ("cassandra_entry_ttl", "CASSANDRA_ENTRY_TTL"),
            ("cassandra_options", "CASSANDRA_OPTIONS"),
            ("s3_access_key_id", "S3_ACCESS_KEY_ID"),
            ("s3_secret_access_key", "S3_SECRET_ACCESS_KEY"),
            ("s3_bucket", "S3_BUCKET"),
            ("s3_base_path", "S3_BASE_PATH"),
            ("s3_endpoint_url", "S3_ENDPOINT_URL"),
            ("s3_region", "S3_REGION"),
        )
    ),
    *(
        _r(name, None, _OTHER_BACKEND)
        for name in (
            "cassandra_auth_provider",
            "cassandra_auth_kwargs",
            "cassandra_secure_bundle_path",
            "azureblockblob_container_name",
            "azureblockblob_base_path",
            "azureblockblob_retry_initial_backoff_sec",
            "azureblockblob_retry_increment_base",
            "azureblockblob_retry_max_attempts",
            "azureblockblob_connection_timeout",
            "azureblockblob_read_timeout",
            "gcs_bucket",
            "gcs_project",
            "gcs_base_path",
            "gcs_ttl",
            "gcs_threadpool_maxsize",
            "elasticsearch_retry_on_timeout",
            "elasticsearch_max_retries",
            "elasticsearch_timeout",
            "elasticsearch_save_meta_as_text",
            "cosmosdbsql_database_name",
            "cosmosdbsql_collection_name",
            "cosmosdbsql_consistency_level",
            "cosmosdbsql_max_retry_attempts",
            "cosmosdbsql_max_retry_wait_time",
        )
    ),
    # -- routing -------------------------------------------------------------------------
    _r(
        "task_queues",
        None,
        "queues need no declaring; consume them with worker -Q",
        "CELERY_QUEUES",
    ),
    _h(
        "task_routes",
        None,
        "CELERY_ROUTES",
        "CELERY_TASK_ROUTES",
        note="routing_key/exchange name the queue",
    ),
    _n(
        "task_queue_max_priority",
        None,
        "each transport declares the priorities it keeps (docs/transports.md)",
    ),
    _h("task_default_priority", None, "CELERY_DEFAULT_PRIORITY"),
    _h("task_inherit_parent_priority", False),
    _r(
        "worker_direct",
        False,
        "send to a worker's own queue with queue= and worker -Q",
        "CELERY_WORKER_DIRECT",
    ),
    _n(
        "task_create_missing_queues",
        True,
        "every queue exists once used",
        "CELERY_CREATE_MISSING_QUEUES",
    ),
    _n(
        "task_create_missing_queue_type",
        "classic",
        "each transport chooses its queue type",
        "CELERY_CREATE_MISSING_QUEUE_TYPE",
    ),
    _n(
        "task_create_missing_queue_exchange_type",
        None,
        _NO_AMQP_TOPOLOGY,
        "CELERY_CREATE_MISSING_QUEUE_EXCHANGE_TYPE",
    ),
    _h(
        "task_default_queue",
        "celery",
        "CELERY_DEFAULT_QUEUE",
        note="conveyor's default queue is 'default'",
    ),
    _n(
        "task_default_queue_type",
        "classic",
        "each transport chooses its queue type",
        "CELERY_DEFAULT_QUEUE_TYPE",
    ),
    _r("task_default_exchange", None, _NO_AMQP_TOPOLOGY, "CELERY_DEFAULT_EXCHANGE"),
    _r("task_default_exchange_type", "direct", _NO_AMQP_TOPOLOGY, "CELERY_DEFAULT_EXCHANGE_TYPE"),
    _r("task_default_routing_key", None, _NO_AMQP_TOPOLOGY, "CELERY_DEFAULT_ROUTING_KEY"),
    _r(
        "task_default_delivery_mode",
        "persistent",
        "messages are always persistent (publish returns after the broker stored it)",
        "CELERY_DEFAULT_DELIVERY_MODE",
    ),
    # -- broker --------------------------------------------------------------------------
    _h("broker_url", None, "BROKER_URL", "CELERY_BROKER_URL"),
    _r("broker_read_url", None, "one broker URL serves reads and writes"),
    _r("broker_write_url", None, "one broker URL serves reads and writes"),
    _r("broker_transport", None, "the broker URL's scheme names the transport", "BROKER_TRANSPORT"),
    _r("broker_transport_options", {}, _URL, "BROKER_TRANSPORT_OPTIONS"),
    _r(
        "broker_failover_strategy",
        None,
        "one broker URL; use a highly available broker",
        "BROKER_FAILOVER_STRATEGY",
    ),
    _n(
        "broker_heartbeat",
        120.0,
        "transports keep their own liveness (leases follow liveness)",
        "BROKER_HEARTBEAT",
    ),
    _n("broker_heartbeat_checkrate", 2.0, "transports keep their own liveness"),
    _r("broker_use_ssl", False, "use a TLS URL: amqps://, rediss://", "BROKER_USE_SSL"),
    _n("broker_pool_limit", 10, "each app holds one connection per transport", "BROKER_POOL_LIMIT"),
    _r("broker_connection_timeout", 4.0, _URL + " (connect_timeout)", "BROKER_CONNECTION_TIMEOUT"),
    _n(
        "broker_connection_retry",
        True,
        "connections are always retried within a bounded budget",
        "BROKER_CONNECTION_RETRY",
    ),
    _n(
        "broker_connection_retry_on_startup",
        None,
        "connections are always retried within a bounded budget",
    ),
    _n(
        "broker_connection_max_retries",
        100,
        "connections are retried within a time budget",
        "BROKER_CONNECTION_MAX_RETRIES",
    ),
    _n("broker_channel_error_retry", False, "transports translate and retry channel errors"),
    _r("broker_login_method", None, _URL, "BROKER_LOGIN_METHOD"),
    _r(
        "broker_native_delayed_delivery_queue_type",
        "quorum",
        "delays wait in the broker by each transport's own means",
        "BROKER_NATIVE_DELAYED_DELIVERY_QUEUE_TYPE",
    ),
    # -- worker --------------------------------------------------------------------------
    _h("imports", (), "CELERY_IMPORTS"),
    _h("include", (), "CELERY_INCLUDE"),
    _n(
        "worker_deduplicate_successful_tasks",
        False,
        "a finished task is never run again: the worker checks the stored state first",
    ),
    _h("worker_concurrency", None, "CELERYD_CONCURRENCY"),
    _h("worker_prefetch_multiplier", 4, "CELERYD_PREFETCH_MULTIPLIER"),
    _n(
        "worker_enable_prefetch_count_reduction",
        True,
        "the prefetch window follows the free slots",
        "CELERYD_ENABLE_PREFETCH_COUNT_REDUCTION",
    ),
    _n(
        "worker_lost_wait",
        10.0,
        "a lost worker's messages come back through their lease",
        "CELERYD_WORKER_LOST_WAIT",
    ),
    _h(
        "worker_max_tasks_per_child",
        None,
        "CELERYD_MAX_TASKS_PER_CHILD",
        note="process pool; a child is replaced between tasks",
    ),
    _h(
        "worker_max_memory_per_child",
        None,
        note="KiB, process pool, read from /proc (Linux)",
    ),
    _h("worker_disable_rate_limits", False, "CELERY_DISABLE_RATE_LIMITS"),
    _r(
        "worker_state_db",
        None,
        "revokes are stored in the result backend and survive restarts",
        "CELERYD_STATE_DB",
    ),
    _n(
        "worker_timer_precision",
        1.0,
        "delays wait in the broker, not in a worker timer",
        "CELERYD_TIMER_PRECISION",
    ),
    _h(
        "worker_enable_remote_control",
        True,
        "CELERY_ENABLE_REMOTE_CONTROL",
        note="False: the worker neither answers ping/inspect nor obeys control commands",
    ),
    _n("worker_proc_alive_timeout", 4.0, "the process pool watches its children itself"),
    _n(
        "worker_cancel_long_running_tasks_on_connection_loss",
        False,
        "a running task keeps its lease; its result is stored when it ends",
    ),
    _n(
        "worker_detect_quorum_queues",
        True,
        "each transport chooses its queue type",
        "CELERYD_DETECT_QUORUM_QUEUES",
    ),
    _n("worker_soft_shutdown_timeout", 0.0, "warm shutdown waits up to worker_shutdown_timeout"),
    _n(
        "worker_enable_soft_shutdown_on_idle",
        False,
        "warm shutdown waits up to worker_shutdown_timeout",
    ),
    _n(
        "worker_eta_task_limit",
        None,
        "eta tasks wait in the broker, never in worker memory",
        "CELERYD_ETA_TASK_LIMIT",
    ),
    _h(
        "worker_pool",
        "prefork",
        "CELERYD_POOL",
        note="threads (default), processes (prefork), solo",
    ),
    _n(
        "worker_pool_putlocks",
        True,
        "the pool takes work only when a slot is free",
        "CELERYD_POOL_PUTLOCKS",
    ),
    _r(
        "worker_pool_restarts",
        False,
        "conveyor has no pool_restart command: Celery's re-imports task modules in place, "
        "which Python cannot do reliably; restart the worker (SIGTERM is a warm shutdown)",
        "CELERYD_POOL_RESTARTS",
    ),
    _r(
        "worker_autoscaler",
        "celery.worker.autoscale:Autoscaler",
        "a class path of Celery's autoscaler; `--autoscale` runs conveyor's own "
        "(conveyor.worker.autoscale), which is not replaceable",
        "CELERYD_AUTOSCALER",
    ),
    _r(
        "worker_consumer",
        "celery.worker.consumer:Consumer",
        "the worker's consumer is not replaceable; add middleware",
        "CELERYD_CONSUMER",
    ),
    _r(
        "worker_timer",
        "kombu.asynchronous.hub.timer:Timer",
        "the worker has no timer to replace",
        "CELERYD_TIMER",
    ),
    _r("worker_agent", None, "no agent hook", "CELERYD_AGENT"),
    # -- events, control -----------------------------------------------------------------
    _h(
        "worker_send_task_events",
        False,
        "CELERY_SEND_EVENTS",
        "CELERYD_SEND_EVENTS",
        note="on by default in conveyor",
    ),
    _h(
        "task_send_sent_event",
        False,
        "CELERY_SEND_SENT_EVENT",
        "CELERY_SEND_TASK_SENT_EVENT",
        note="on by default in conveyor",
    ),
    _n(
        "event_queue_ttl",
        5.0,
        "events are stored by the monitoring layer",
        "CELERY_EVENT_QUEUE_TTL",
    ),
    _n(
        "event_queue_expires",
        60.0,
        "events are stored by the monitoring layer",
        "CELERY_EVENT_QUEUE_EXPIRES",
    ),
    _n(
        "event_queue_prefix",
        "celeryev",
        "events are stored by the monitoring layer",
        "CELERY_EVENT_QUEUE_PREFIX",
    ),
    _n(
        "event_queue_durable",
        False,
        "events are stored by the monitoring layer",
        "CELERY_EVENT_QUEUE_DURABLE",
    ),
    _n(
        "event_queue_exclusive",
        False,
        "events are stored by the monitoring layer",
        "CELERY_EVENT_QUEUE_EXCLUSIVE",
    ),
    _n("event_exchange", "celeryev", _NO_AMQP_TOPOLOGY),
    _r("event_serializer", "json", "events are JSON", "CELERY_EVENT_SERIALIZER"),
    _n("control_queue_ttl", 300.0, "control messages travel on each transport's broadcast"),
    _n("control_queue_expires", 10.0, "control messages travel on each transport's broadcast"),
    _n("control_exchange", "celery", "control messages travel on each transport's broadcast"),
    # -- logging -------------------------------------------------------------------------
    _h(
        "worker_hijack_root_logger",
        True,
        "CELERYD_HIJACK_ROOT_LOGGER",
        note="False keeps the root logger's handlers when it has any",
    ),
    _n("worker_log_color", None, "the worker logs plain text", "CELERYD_LOG_COLOR"),
    _h(
        "worker_log_format",
        None,
        "CELERYD_LOG_FORMAT",
        "CELERY_WORKER_LOG_FORMAT",
        note="unset: Celery's, with the running task's name[id] before the message",
    ),
    _h(
        "worker_task_log_format",
        None,
        "CELERYD_TASK_LOG_FORMAT",
        "CELERY_WORKER_TASK_LOG_FORMAT",
        note="task loggers' lines; %(task_name)s and %(task_id)s as in Celery",
    ),
    _h(
        "worker_redirect_stdouts",
        True,
        "CELERY_REDIRECT_STDOUTS",
        "CELERYD_REDIRECT_STDOUTS",
        note="`conveyor worker` and its process-pool children log what tasks print",
    ),
    _h(
        "worker_redirect_stdouts_level",
        "WARNING",
        "CELERY_REDIRECT_STDOUTS_LEVEL",
        "CELERYD_REDIRECT_STDOUTS_LEVEL",
    ),
    # -- security ------------------------------------------------------------------------
    _r("security_key", None, _SIGNED, "CELERY_SECURITY_KEY"),
    _r("security_key_password", None, _SIGNED, "CELERY_SECURITY_KEY_PASSWORD"),
    _r("security_certificate", None, _SIGNED, "CELERY_SECURITY_CERTIFICATE"),
    _r("security_cert_store", None, _SIGNED, "CELERY_SECURITY_CERT_STORE"),
    _r("security_digest", "sha256", _SIGNED),
    # -- beat ----------------------------------------------------------------------------
    _h("beat_schedule", {}, "CELERYBEAT_SCHEDULE"),
    _r(
        "beat_scheduler",
        "celery.beat:PersistentScheduler",
        "beat keeps its state in a lease store (beat_store_url); see docs/beat.md",
        "CELERYBEAT_SCHEDULER",
    ),
    _n(
        "beat_schedule_filename",
        "celerybeat-schedule",
        "beat keeps its state in a lease store, not a file (docs/beat.md)",
        "CELERYBEAT_SCHEDULE_FILENAME",
    ),
    _n(
        "beat_sync_every",
        0,
        "each tick is claimed in the lease store as it runs",
        "CELERYBEAT_SYNC_EVERY",
    ),
    _h("beat_max_loop_interval", 0, "CELERYBEAT_MAX_LOOP_INTERVAL"),
    _h("beat_cron_starting_deadline", None),
)

BY_NAME = {row.name: row for row in TABLE}
OLD_NAMES = {old: row.name for row in TABLE for old in row.old}


def markdown_table() -> str:
    """The settings section of docs/celery.md: one row per setting, as in TABLE."""
    lines = ["| setting | old names | conveyor | note |", "|---|---|---|---|"]
    for row in TABLE:
        old = ", ".join(f"`{name}`" for name in row.old)
        lines.append(f"| `{row.name}` | {old} | {row.verdict} | {row.note} |")
    return "\n".join(lines) + "\n"


def check(name: str, value: Any) -> None:
    """Refuse a refused setting set away from Celery's default; note a not-needed one."""
    row = BY_NAME.get(name)
    if row is None or row.verdict == HONOURED:
        return
    if row.verdict == NOT_NEEDED:
        log.info("setting %s is not needed by conveyor: %s", name, row.note)
        return
    if value != row.default and not (value in (None, {}, (), []) and not row.default):
        raise RefusedSetting(f"setting {name}={value!r} is not supported: {row.note}")
