"""The WSGI entry point for production servers: `gunicorn -c gunicorn.conf.py wsgi:app`.

Settings come from environment variables only (see the README, "Deploying"). With
`APP_ENV=production` (or `FLASK_ENV=production`) the app refuses to start without SECRET_KEY:
the zero-setup fallback, a random key kept in each machine's instance folder, would sign
sessions that the other machines behind the load balancer reject.
"""

import logging
import os

from admin_app import create_app

log = logging.getLogger("wsgi")

PRODUCTION = "production"


def check_production_settings(environ=os.environ):
    """Raise RuntimeError, after logging why, when a production setting must not be defaulted."""
    environment = environ.get("APP_ENV") or environ.get("FLASK_ENV") or ""
    if environment.strip().lower() != PRODUCTION:
        return

    if not environ.get("SECRET_KEY"):
        message = (
            "refusing to start: APP_ENV/FLASK_ENV is production but SECRET_KEY is not set; "
            "set SECRET_KEY to the same long random value on every app machine"
        )
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        log.critical(message)
        raise RuntimeError(message)
    if not environ.get("DATABASE_URL"):
        log.warning("production without DATABASE_URL: using the SQLite file in the instance folder")


check_production_settings()
app = create_app()
