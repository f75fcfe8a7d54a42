# Runlane in API mode: the same package install as the README, run as a non-root user.
#   docker build -t runlane .
#   docker run -p 8000:8000 -v runlane-output:/data/output runlane
# API keys are on (RUNLANE_AUTH=api-key); make one in the same volume:
#   docker run --rm -v runlane-output:/data/output runlane runlane keys create --name me --admin
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /srv/runlane
RUN groupadd --system --gid 10001 runlane \
    && useradd --system --uid 10001 --gid runlane --home-dir /srv/runlane --no-create-home runlane

COPY pyproject.toml README.md ./
COPY app ./app
# The `scale` extra (Celery, Redis, PostgreSQL clients) lets one image serve as API or worker.
# It is the project itself, with its own version bounds in pyproject.toml, not a PyPI name.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[scale]"

COPY documents ./documents
RUN mkdir -p /data/output && chown -R 10001:10001 /data

ENV RUNLANE_AUTH=api-key \
    RUNLANE_OUTPUT_DIR=/data/output \
    RUNLANE_DOCUMENTS_ROOT=/srv/runlane \
    RUNLANE_DATA_DIR=/srv/runlane/documents/data

USER 10001:10001
VOLUME ["/data/output"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=4).status != 200)"]

CMD ["uvicorn", "app.api.main:app", "--host", "0.0.0.0", "--port", "8000", "--http", "app.api.http_protocol:BoundedHttpToolsProtocol"]
