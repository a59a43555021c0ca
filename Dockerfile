# One image for every bounceflow service; docker-compose picks the module to run.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY constraints.txt ./
COPY common common
COPY services services
COPY devkit devkit
RUN pip install --no-cache-dir -c constraints.txt \
      -e common -e services/ingress -e services/sender -e services/bounce-receiver \
      -e services/classifier -e services/notifier -e devkit
COPY schemas schemas
RUN useradd --system --home /app bounceflow && mkdir -p /app/var && chown bounceflow /app/var
USER bounceflow
CMD ["bounceflow", "--help"]
