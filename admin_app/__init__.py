"""Application factory of the 進階專業回饋人才認證 system."""

import logging
import os

from flask import Flask

from . import config
from .extensions import babel, csrf, db, login_manager, mail, migrate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def create_app(overrides=None):
    """Build the application: configuration, extensions, pages, back office and commands."""
    app = Flask(
        __name__,
        instance_path=os.environ.get("INSTANCE_PATH") or os.path.join(ROOT, "instance"),
        template_folder=os.path.join(ROOT, "views", "templates"),
        static_folder=os.path.join(ROOT, "views", "static"),
    )
    config.load(app, overrides)
    os.makedirs(app.instance_path, exist_ok=True)
    os.makedirs(app.config["UPLOAD_FOLDER"], exist_ok=True)
    if not app.debug and not app.testing:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )

    _init_extensions(app)

    from . import mailer, security, web

    security.init_app(app)
    web.init_app(app)
    mailer.init_app(app)

    from views import register_views

    register_views(app)

    from . import cli

    cli.init_app(app)
    return app


def _init_extensions(app):
    # models must be imported before migrate sees the metadata
    import models  # noqa: F401

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(ROOT, "migrations"), render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    babel.init_app(
        app,
        locale_selector=lambda: "zh_Hant_TW",
        timezone_selector=lambda: "Asia/Taipei",
    )
    mail.init_app(app)
