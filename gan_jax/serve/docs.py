"""/docs (Swagger UI) and /redoc served from files installed with the package, never a CDN.

Hospitals often run the server in networks with no internet, where the usual docs pages stay
blank (they load their JavaScript and CSS from a CDN). The assets come from the `fastapi-offline`
package (Swagger UI 5, which reads OpenAPI 3.1, and ReDoc); the two pages are the standard
bootstrap pages of those projects, pointed at them.
"""

from __future__ import annotations

import os

from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

STATIC_URL = "/docs/static"

_SWAGGER = """<!DOCTYPE html>
<html>
<head>
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link type="text/css" rel="stylesheet" href="{static}/swagger-ui.css">
<link rel="shortcut icon" href="{static}/favicon.png">
<title>{title} - docs</title>
</head>
<body>
<div id="swagger-ui"></div>
<script src="{static}/swagger-ui-bundle.js"></script>
<script>
const ui = SwaggerUIBundle({{
  url: '{openapi_url}',
  dom_id: '#swagger-ui',
  layout: 'BaseLayout',
  deepLinking: true,
  validatorUrl: null,
  oauth2RedirectUrl: window.location.origin + '/docs/oauth2-redirect',
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
}})
</script>
</body>
</html>
"""

_REDOC = """<!DOCTYPE html>
<html>
<head>
<title>{title} - ReDoc</title>
<meta charset="utf-8"/>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="shortcut icon" href="{static}/favicon.png">
<style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
<redoc spec-url="{openapi_url}"></redoc>
<script src="{static}/redoc.standalone.js"></script>
</body>
</html>
"""

# Swagger UI's OAuth2 redirect page: hands the authorization response back to the opener.
_OAUTH2_REDIRECT = """<!DOCTYPE html>
<html lang="en-US"><head><title>Swagger UI: OAuth2 Redirect</title></head>
<body><script>
'use strict';
function run () {
  var oauth2 = window.opener.swaggerUIRedirectOauth2;
  var sentState = oauth2.state;
  var redirectUrl = oauth2.redirectUrl;
  var qp = /code|token|error/.test(window.location.hash)
    ? window.location.hash.substring(1).replace('?', '&') : location.search.substring(1);
  var arr = qp.split("&");
  arr.forEach(function (v, i, _arr) { _arr[i] = '"' + v.replace('=', '":"') + '"'; });
  qp = qp ? JSON.parse('{' + arr.join() + '}', function (key, value) {
    return key === "" ? value : decodeURIComponent(value); }) : {};
  var isValid = qp.state === sentState;
  var flow = oauth2.auth.schema.get("flow");
  if ((flow === "accessCode" || flow === "authorizationCode" || flow === "authorization_code")
      && !oauth2.auth.code) {
    if (!isValid) { oauth2.errCb({authId: oauth2.auth.name, source: "auth", level: "warning",
                    message: "Authorization may be unsafe, passed state was changed in server."}); }
    if (qp.code) { delete oauth2.state; oauth2.auth.code = qp.code;
                   oauth2.callback({auth: oauth2.auth, redirectUrl: redirectUrl}); }
    else { oauth2.errCb({authId: oauth2.auth.name, source: "auth", level: "error",
                         message: "Authorization failed: no accessCode received from the server."}); }
  } else { oauth2.callback({auth: oauth2.auth, token: qp, isValid: isValid, redirectUrl: redirectUrl}); }
  window.close();
}
if (document.readyState !== 'loading') { run(); } else { document.addEventListener('DOMContentLoaded', run); }
</script></body></html>
"""


def static_dir() -> str:
    import fastapi_offline

    return os.path.join(os.path.dirname(fastapi_offline.__file__), "static")


def routes(openapi_url: str, title: str) -> tuple[list, set[str]]:
    """The routes of /docs, /docs/oauth2-redirect, /redoc and their assets, and every path they
    serve (to be left open by auth)."""
    fill = {"static": STATIC_URL, "openapi_url": openapi_url, "title": title}
    pages = {
        "/docs": _SWAGGER.format(**fill),
        "/docs/oauth2-redirect": _OAUTH2_REDIRECT,
        "/redoc": _REDOC.format(**fill),
    }

    def page(html: str):
        async def endpoint(request):
            return HTMLResponse(html)

        return endpoint

    out = [Route(path, page(html), methods=["GET"]) for path, html in pages.items()]
    out.append(Mount(STATIC_URL, StaticFiles(directory=static_dir()), name="docs-static"))
    assets = {f"{STATIC_URL}/{name}" for name in os.listdir(static_dir())}
    return out, {*pages, *assets}
