"""The Compose file a fresh Redash install gets: the layout of the setup repository's
``data/compose.yaml`` for 25.x (services server, scheduler, scheduled_worker, adhoc_worker, worker,
redis, postgres, nginx; the app's image in one anchor), with the chosen release's tag and the
install directory's env file and ``postgres-data/``. An existing Compose file is never replaced:
an operator's changes to it are theirs."""

from __future__ import annotations

from pathlib import Path

TEMPLATE = """\
# Written by coolify-migrate for Redash {tag}: the layout of Redash's own setup (data/compose.yaml).
# Upgrades change only the tag below; the rest is yours to edit.
x-redash-service: &redash-service
  image: redash/redash:{tag}
  depends_on:
    - postgres
    - redis
  env_file: {env}
  restart: always
services:
  server:
    <<: *redash-service
    command: server
    ports:
      - "5000:5000"
    environment:
      REDASH_WEB_WORKERS: 4
  scheduler:
    <<: *redash-service
    command: scheduler
    depends_on:
      - server
  scheduled_worker:
    <<: *redash-service
    command: worker
    depends_on:
      - server
    environment:
      QUEUES: "scheduled_queries,schemas"
      WORKERS_COUNT: 1
  adhoc_worker:
    <<: *redash-service
    command: worker
    depends_on:
      - server
    environment:
      QUEUES: "queries"
      WORKERS_COUNT: 2
  worker:
    <<: *redash-service
    command: worker
    environment:
      QUEUES: "periodic,emails,default"
      WORKERS_COUNT: 1
  redis:
    image: redis:7-alpine
    restart: unless-stopped
  postgres:
    image: pgautoupgrade/pgautoupgrade:latest
    env_file: {env}
    volumes:
      - {data}:/var/lib/postgresql/data
    restart: unless-stopped
  nginx:
    image: redash/nginx:latest
    ports:
      - "80:80"
    depends_on:
      - server
    links:
      - server:redash
    restart: always
"""


def render(tag: str, directory: Path, env_file: str) -> str:
    return TEMPLATE.format(tag=tag, env=directory / env_file, data=directory / "postgres-data")
