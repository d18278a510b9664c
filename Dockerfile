# The CDS service image: the package and its clinical content, run as an unprivileged user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY cds_service ./cds_service
COPY cards ./cards
# A regular (non-editable) install: the clinical content in cards/ ships as package data.
RUN pip install --no-cache-dir . \
    && rm -rf /app/cds_service /app/cards \
    && useradd --system --uid 10001 --home-dir /app cds \
    && install -d -m 0700 -o cds /data  # feedback's comments and the patient-id key: the service user's alone

USER cds
ENV CDS_DATA_DIR=/data CDS_HOST=0.0.0.0
EXPOSE 8000
# `serve` bounds every connection before authentication (request heads, read timeouts, keep-alive,
# a connection cap: the CDS_MAX_HEADER_BYTES, CDS_*_TIMEOUT_SECONDS, CDS_KEEP_ALIVE_SECONDS and
# CDS_MAX_CONNECTIONS settings); in production run it behind a reverse proxy that terminates TLS
# (deploy/nginx.conf, as docker-compose.yml does) with CDS_PUBLIC_URL and CDS_TRUSTED_PROXIES set.
CMD ["cds-service", "serve", "--host", "0.0.0.0", "--port", "8000"]
