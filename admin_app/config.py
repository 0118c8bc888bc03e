"""Configuration: defaults here, then environment variables, then test overrides."""

import os
from datetime import timedelta

DEFAULTS = {
    "SECRET_KEY": None,
    "SQLALCHEMY_DATABASE_URI": None,
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    "UPLOAD_FOLDER": None,
    "MAX_UPLOAD_MB": 10,
    "TIMEZONE": "Asia/Taipei",
    "BABEL_DEFAULT_LOCALE": "zh_Hant_TW",
    "BABEL_DEFAULT_TIMEZONE": "Asia/Taipei",
    "WTF_CSRF_TIME_LIMIT": None,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "REMEMBER_COOKIE_HTTPONLY": True,
    "MAIL_SERVER": "localhost",
    "MAIL_PORT": 25,
    "MAIL_USE_TLS": False,
    "MAIL_USE_SSL": False,
    "MAIL_USERNAME": None,
    "MAIL_PASSWORD": None,
    "MAIL_DEFAULT_SENDER": "進階專業回饋人才認證中心 <noreply@localhost>",
    "MAIL_SUPPRESS_SEND": False,
    "MAIL_TIMEOUT": 10,
    "SEND_MAIL_AFTER_COMMIT": True,
    "MAIL_MAX_ATTEMPTS": 8,
    "MAIL_AFTER_COMMIT_TIMEOUT": 3,
    "MAIL_AFTER_COMMIT_LIMIT": 20,
    "REVIEW_REMINDER_DAYS": 3,
    "FLASK_ADMIN_SWATCH": "cerulean",
    "PAGE_SIZE": 50,
    # background jobs (exports, imports): run in a thread of the web process for the
    # zero-setup server; in production set JOBS_IN_PROCESS=0 and run `flask run-jobs --loop`
    "JOBS_IN_PROCESS": True,
    "JOBS_FOLDER": None,
    "JOB_STALE_MINUTES": 10,
    "JOB_RESULT_DAYS": 7,
    # sessions and cookies: a session cookie is refused 8 hours after it was last written
    "PERMANENT_SESSION_LIFETIME": timedelta(hours=8),
    "SESSION_COOKIE_SECURE": False,
    # None: the same as SESSION_COOKIE_SECURE
    "REMEMBER_COOKIE_SECURE": None,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    # how many reverse proxies in front of the app set X-Forwarded-For/-Proto; 0 trusts none
    "TRUSTED_PROXY_COUNT": 0,
    # login throttling (models.login_throttle)
    "LOGIN_ACCOUNT_FAILURES": 5,
    "LOGIN_ADDRESS_FAILURES": 20,
    "LOGIN_WINDOW_MINUTES": 15,
    "LOGIN_LOCK_MINUTES": 15,
}

# environment variable name -> (config key, converter)
ENVIRONMENT = {
    "SECRET_KEY": ("SECRET_KEY", str),
    "DATABASE_URL": ("SQLALCHEMY_DATABASE_URI", str),
    "UPLOAD_FOLDER": ("UPLOAD_FOLDER", str),
    "MAX_UPLOAD_MB": ("MAX_UPLOAD_MB", int),
    "MAIL_SERVER": ("MAIL_SERVER", str),
    "MAIL_PORT": ("MAIL_PORT", int),
    "MAIL_USE_TLS": ("MAIL_USE_TLS", lambda v: v.lower() in ("1", "true", "yes")),
    "MAIL_USE_SSL": ("MAIL_USE_SSL", lambda v: v.lower() in ("1", "true", "yes")),
    "MAIL_USERNAME": ("MAIL_USERNAME", str),
    "MAIL_PASSWORD": ("MAIL_PASSWORD", str),
    "MAIL_DEFAULT_SENDER": ("MAIL_DEFAULT_SENDER", str),
    "MAIL_TIMEOUT": ("MAIL_TIMEOUT", int),
    "MAIL_MAX_ATTEMPTS": ("MAIL_MAX_ATTEMPTS", int),
    "REVIEW_REMINDER_DAYS": ("REVIEW_REMINDER_DAYS", int),
    "JOBS_IN_PROCESS": ("JOBS_IN_PROCESS", lambda v: v.lower() in ("1", "true", "yes")),
    "JOBS_FOLDER": ("JOBS_FOLDER", str),
    "SESSION_COOKIE_SECURE": ("SESSION_COOKIE_SECURE", lambda v: v.lower() in ("1", "true")),
    "TRUSTED_PROXY_COUNT": ("TRUSTED_PROXY_COUNT", int),
}


def normalise_database_url(url):
    """Point plain postgres URLs at the psycopg 3 driver that requirements.txt installs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def load(app, overrides=None):
    """Fill app.config from the defaults, the environment and the given overrides."""
    app.config.from_mapping(DEFAULTS)

    for variable, (key, convert) in ENVIRONMENT.items():
        if variable in os.environ and os.environ[variable] != "":
            app.config[key] = convert(os.environ[variable])

    app.config.update(overrides or {})

    if not app.config["SQLALCHEMY_DATABASE_URI"]:
        path = os.path.join(app.instance_path, "certification.db")
        app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + path
    app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(
        app.config["SQLALCHEMY_DATABASE_URI"]
    )
    if not app.config["UPLOAD_FOLDER"]:
        app.config["UPLOAD_FOLDER"] = os.path.join(app.instance_path, "uploads")
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _instance_secret(app.instance_path)
    app.config["MAX_CONTENT_LENGTH"] = request_limit(app.config["MAX_UPLOAD_MB"])


def request_limit(upload_mb):
    """The largest request body, in bytes: room for twice the per-file limit and the form.

    A file a little over the limit must still reach the form's own checks, so that the page
    comes back with the size message and with everything else the person typed; a request cut
    off here has no form left to show again.
    """
    return (2 * upload_mb + 1) * 1024 * 1024


def _instance_secret(instance_path):
    """Create once and reuse a random key in the instance folder for zero-setup runs."""
    path = os.path.join(instance_path, "secret_key")
    os.makedirs(instance_path, exist_ok=True)
    if not os.path.exists(path):
        with open(path, "w") as handle:
            handle.write(os.urandom(32).hex())
    with open(path) as handle:
        return handle.read().strip()
