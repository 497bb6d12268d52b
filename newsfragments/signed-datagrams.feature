With `--secret-file` or `MNEMIC_SECRET`, mnemic accepts only datagrams signed with HMAC-SHA256, as dolon signs them when given the same `secret=`.
