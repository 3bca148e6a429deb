# The SMKI sandbox as a container (docs/serving.md#docker):
#   docker build -t smki-sandbox .
#   docker run --rm -v smki-data:/data smki-sandbox smki demo    # optional: seed the demo, print its credentials
#   docker run --rm -p 8080:8080 -p 8083:8083 -v smki-data:/data smki-sandbox
# State lives in /data (the volume keeps the CA, key stores and database across restarts).
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
# The policy and form folders are data beside the installed package, not inside it.
ENV SMKI_POLICIES=/app/policies \
    SMKI_RAPP_FORMS=/app/rapp_forms
# 8080: the web service (/ lists the portals and API documents); 8083: the Repository's services on the DCC
# Boxed port, served because of --dccboxed (which also accepts DCC Boxed's published default API key).
EXPOSE 8080 8083
CMD ["smki", "serve", "--host", "0.0.0.0", "--port", "8080", "--dccboxed"]
