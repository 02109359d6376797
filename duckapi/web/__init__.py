"""The web page at `GET /`: post rows to any served endpoint and see the answers as
charts and tables (static/). Everything it loads is served by duckapi itself: the page,
its script and style, and the charting library from the installed `plotly` package.

The paths are public like /healthz (the API key, when keys are on, is typed into the
page and sent by it); `routes.mount` adds them to the app.
"""

#: The page and its assets: public (api/ops/auth.py) and labelled in metrics (api/ops/requests.py).
PATHS = frozenset({"/", "/web/app.js", "/web/app.css", "/web/plotly.min.js"})
