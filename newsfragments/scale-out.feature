`--reuse-port` lets several mnemic processes share one UDP port, and `--no-web` and `--no-udp` run ingest-only and web-only processes on one database.
