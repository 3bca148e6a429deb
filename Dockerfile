# The SMKI sandbox as a container: `docker build -t smki-sandbox . && docker run -p 8080:8080 smki-sandbox`
# State lives in /data (mount a volume to keep the CA and database across restarts).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SMKI_INSTANCE=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY smki ./smki
COPY repository ./repository
COPY policies ./policies
COPY rapp_forms ./rapp_forms
RUN pip install --no-cache-dir . \
    && useradd --system --home /data --create-home smki

USER smki
VOLUME ["/data"]
EXPOSE 8080 8083
# The policy and form folders are data beside the installed package, not inside it.
ENV SMKI_POLICIES=/app/policies \
    SMKI_RAPP_FORMS=/app/rapp_forms
CMD ["smki", "serve", "--host", "0.0.0.0", "--port", "8080"]
