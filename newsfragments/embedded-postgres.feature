Without `--postgres` or `POSTGRES_CONN_STR`, mnemic runs its own embedded PostgreSQL server, with its files in `--data-dir`.
