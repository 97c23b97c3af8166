# Remediator: one process, one SQLite file on a persistent volume (/data). Run one replica only.
# Build: docker build -t remediator .    Run: see docs/DEPLOY.md
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The packages (engine, receivers, cli, the shipped samples and templates as package data) at the
# versions pinned in requirements.lock, then the shipped playbooks, which the service reads
# from /app/playbooks by default.
COPY pyproject.toml README.md requirements.lock ./
COPY engine ./engine
COPY receivers ./receivers
COPY cli ./cli
COPY sandbox ./sandbox
RUN pip install -c requirements.lock . && rm -rf build
COPY playbooks ./playbooks
COPY deploy ./deploy

# A non-root user that owns only the data volume.
RUN groupadd --system --gid 10001 remediator \
    && useradd --system --uid 10001 --gid remediator --home-dir /data --shell /usr/sbin/nologin remediator \
    && mkdir -p /data && chown remediator:remediator /data
VOLUME ["/data"]

ENV REMEDIATOR_DB=/data/remediator.db \
    REMEDIATOR_PLAYBOOKS=/app/playbooks \
    REMEDIATOR_PORT=8080

USER remediator
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('REMEDIATOR_PORT', '8080'), timeout=4)"]

ENTRYPOINT ["remediator"]
CMD ["serve", "--host", "0.0.0.0"]
