While PostgreSQL is unreachable, mnemic keeps up to `--buffer-rows` rows, reconnects with backoff and writes them once the database is back.
