"""/docs and /redoc render with no internet (issue 15 §3), checked in headless Chromium.

Chromium runs with every host but loopback unresolvable and a dead proxy, so any asset the page
tried to load from a CDN would fail; its DOM after the page's JavaScript has run must list the
API's operations. FastAPI's default (CDN) docs page, under the same flags, must not — which shows
the check can fail. Bug caught: a blank /docs page in an air-gapped hospital network.

Needs Debian's Chromium (`apt-get install chromium`, /usr/bin/chromium); skipped without it.
"""

import os
import subprocess
import tempfile

import pytest
from fastapi import FastAPI
from test_serve import running

from gan_jax.serve import DataPlane, EchoPredictor, ServeSettings, create_app

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason=f"{CHROMIUM} not found (apt-get install chromium); needed to render /docs",
)
OPERATIONS = ["/predict", "/v2/models/{name}/infer", "/invocations", "/metrics"]


def rendered_dom(url: str) -> str:
    """The page's DOM after its scripts ran, in Chromium with only loopback reachable."""
    with tempfile.TemporaryDirectory() as profile:
        argv = [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            # The network is off: no name resolves but loopback, and the proxy is a closed port.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--proxy-server=http://127.0.0.1:9",  # loopback bypasses a proxy by default
            "--virtual-time-budget=5000",
            "--dump-dom",
            url,
        ]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def docs_url():
    app = create_app(
        DataPlane(EchoPredictor(8), ServeSettings(token="secret"))
    )  # docs stay open with auth on
    with running(app) as url:
        yield url


def test_swagger_ui_renders_the_operations_offline(docs_url):
    dom = rendered_dom(f"{docs_url}/docs")
    assert "swagger-ui" in dom and "opblock" in dom, dom[:2000]
    for path in OPERATIONS:
        assert path in dom, f"{path} not rendered"


def test_redoc_renders_the_operations_offline(docs_url):
    dom = rendered_dom(f"{docs_url}/redoc")
    for path in OPERATIONS:
        assert path in dom, f"{path} not rendered"


def test_the_cdn_page_stays_blank_under_the_same_flags():
    """The control: FastAPI's default /docs (Swagger UI from a CDN) renders no operation here."""
    app = FastAPI()
    app.get("/predict")(lambda: {})
    with running(app) as url:
        dom = rendered_dom(f"{url}/docs")
    assert "cdn.jsdelivr.net" in dom and "opblock" not in dom and "/predict" not in dom
