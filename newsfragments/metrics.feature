`GET /metrics` reports mnemic's own counters in Prometheus text format, among them rejected datagrams, rows written and dropped, queue depth, flush time and the kernel's UDP drops.
