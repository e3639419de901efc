# syntax=docker/dockerfile:1
# chat-ingest: build the locked virtualenv in one stage, run it as a non-root user in another.

FROM python:3.11-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.13 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
# Dependencies first (cached while only the code changes), exactly as locked in uv.lock.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY src ./src
RUN uv sync --frozen --no-dev --no-editable

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --no-create-home app \
    && mkdir /data && chown app:app /data
COPY --from=build /app/.venv /app/.venv
ENV PATH="/app/.venv/bin:$PATH" PYTHONUNBUFFERED=1 API_HOST=0.0.0.0 API_PORT=10000
# Without DATABASE_URL the service uses SQLite in the working directory: /data, a volume.
WORKDIR /data
VOLUME /data
USER app
EXPOSE 10000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('API_PORT', '10000')}/api/chat/health\", timeout=4)"]
# No --reload in production. Scale with `--workers N` (one pool of DB_POOL_SIZE per worker)
# or, better behind a load balancer, with more containers.
CMD ["chat-ingest", "serve"]
