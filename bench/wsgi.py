"""The product as gunicorn serves it, plus the benchmark's trivial endpoint /bench/ping."""

from admin_app.extensions import csrf
from wsgi import app


def ping():
    """The cheapest answer the same gunicorn setup can give: the anchor of the portal load."""
    return "ok"


app.add_url_rule("/bench/ping", "bench_ping", csrf.exempt(ping))
