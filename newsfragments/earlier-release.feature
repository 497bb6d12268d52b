mnemic accepts the earlier dolon release's messages and reads `POSTGRES_CONN_STR`, `BACK_END_PORT` and `FRONT_END_PORT`, so existing clients and container set-ups keep working.
