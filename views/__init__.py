"""Every page of the system: teacher portal, reviewer and county pages, and the back office."""


def register_views(app):
    """Attach the blueprints and the Flask-Admin back office to the app."""
    from . import auth, county, health, portal, reviewer
    from .admin import init_admin

    app.register_blueprint(health.blueprint)
    app.register_blueprint(auth.blueprint)
    app.register_blueprint(portal.blueprint)
    app.register_blueprint(reviewer.blueprint)
    app.register_blueprint(county.blueprint)
    init_admin(app)
