#!/bin/sh
# Writes the page once at start (env comes from the Deployment: pod and node names from the downward API,
# GREETING from the ConfigMap, so a changed ConfigMap shows after `kubectl rollout restart`), then serves it.
set -e
mkdir -p /www
echo "${GREETING:-Hello} from pod ${POD_NAME:-$(hostname)} on node ${NODE_NAME:-?} (${POD_IP:-?})" > /www/index.html
echo ok > /www/healthz
exec httpd -f -p "${PORT:-8080}" -h /www
