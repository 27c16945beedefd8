"""`vidcluster serve OUT`: review a case in the browser, on 127.0.0.1 only, with a token per start.

`app` is the HTTP side (who may ask, pages, images, clips, the server's life), `api` the case
behind the JSON API (reads from the store, corrections through `commands.workflow`), `static/`
the page's script and style. Sits between `commands` and `cli`.
"""

from .app import Running, Stopped, serve

__all__ = ["Running", "Stopped", "serve"]
