#!/usr/bin/env bash
# Install into a virtualenv, load the demo data on SQLite and start the server on port 5000.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -r requirements.txt

export FLASK_APP=admin_app
.venv/bin/flask load-demo
exec .venv/bin/flask run --host 127.0.0.1 --port "${PORT:-5000}"
