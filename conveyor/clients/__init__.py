"""Connection code that a store's transport and its result backend share: connecting,
failover, the translation of client-library errors into conveyor's, the held connection.

redis.py and redis_held.py (redis-py), sql.py and sql_driver.py (SQLAlchemy Core engines and
statements compiled once), tls.py (TLS options). Nothing here knows a queue or a result.
"""
