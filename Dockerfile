# shellwatch worker image: `docker build -t shellwatch:0.1.0 .`
# Stage 1 builds the shellwatch wheel and installs it with its pinned dependencies (binary wheels only, so
# nothing is compiled) into a virtualenv; stage 2 copies that virtualenv into a clean slim runtime.
# It builds with the classic builder as well as with BuildKit (no syntax directive, no RUN --mount).
#
# BASE_IMAGE: any image with Python 3.11 on PATH as `python` and its venv module (the default, or a
# Debian bookworm with python3-venv and python-is-python3: what `.ci/containers.sh` builds from Debian's
# packages). BUILD_BASE_IMAGE: the builder stage's base, by default the same; CI passes the same base plus
# the host's CA bundle, so pip reaches PyPI through its TLS proxy while the shipped stage never holds it.
ARG BASE_IMAGE=python:3.11-slim-trixie
ARG BUILD_BASE_IMAGE=${BASE_IMAGE}

FROM ${BUILD_BASE_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src

RUN python -m venv /opt/shellwatch \
    && /opt/shellwatch/bin/python -m pip wheel --no-cache-dir --no-deps --wheel-dir /dist . \
    && /opt/shellwatch/bin/python -m pip install --no-cache-dir --only-binary=:all: \
        --constraint constraints.txt /dist/shellwatch-*.whl \
    && /opt/shellwatch/bin/python -m pip uninstall --yes pip \
    && /opt/shellwatch/bin/shellwatch check-rules


FROM ${BASE_IMAGE} AS runtime

ARG UID=10001
ARG GID=10001

LABEL org.opencontainers.image.title="shellwatch" \
      org.opencontainers.image.description="Real-time detection of shells spawned by exploited Java applications, over Kafka" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/shellwatch/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SHELLWATCH_DATA_DIR=/var/lib/shellwatch \
    SHELLWATCH_WEB_PORT=6066

# A fixed numeric user (Kubernetes runAsNonRoot checks the number) owning only the data directory.
RUN groupadd --system --gid "${GID}" shellwatch \
    && useradd --system --uid "${UID}" --gid "${GID}" --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin shellwatch \
    && install -d -o "${UID}" -g "${GID}" -m 0750 /var/lib/shellwatch

COPY --from=builder /opt/shellwatch /opt/shellwatch

USER 10001:10001
WORKDIR /var/lib/shellwatch
VOLUME ["/var/lib/shellwatch"]
EXPOSE 6066

ENTRYPOINT ["shellwatch"]
CMD ["worker"]
