`PostgresDiagnostics` adds columns with the live and dead rows and the sessions of a PostgreSQL database (it needs asyncpg).
