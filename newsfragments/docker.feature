`docker/Dockerfile` builds an image that runs mnemic, and `docker/docker-compose.yml` runs it together with PostgreSQL.
