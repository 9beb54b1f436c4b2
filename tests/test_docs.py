"""
The documentation site as a reader sees it: `mkdocs build --strict`, then the built pages in headless Chromium
(Debian's `chromium`, driven through the DevTools protocol over a pipe): the equations are typeset, the notebook pages
show their plots, and search finds the configuration fields. `make test-docs` runs it after `make docs`; set
LAMBDA_TRL_DOCS_SCREENSHOTS=DIR to keep a screenshot of every page checked.
"""

import base64
import dataclasses
import fcntl
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from helpers import serve_directory

from lambda_trl.commands.train import TrainScriptArguments
from lambda_trl.config import LambdaGRPOConfig
from lambda_trl.lambda_return_config import LambdaReturnGRPOConfig


ROOT = Path(__file__).resolve().parent.parent
DOCS_MODULES = ("mkdocs", "material", "mkdocstrings_handlers.python", "mkdocs_jupyter", "mathjax")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# The flags this machine's network needs: without them Chromium keeps trying to reach Google's hosts.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1400",
)
TIMEOUT_MS = 30_000

pytestmark = [
    pytest.mark.skipif(
        not all(importlib.util.find_spec(name.split(".")[0]) for name in DOCS_MODULES),
        reason="needs the docs extra: `make docs` (pip install -e '.[docs]')",
    ),
    pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium: apt-get install chromium"),
]


class Browser:
    """Headless Chromium with the DevTools protocol on fds 3 and 4 (`--remote-debugging-pipe`): JSON messages ending
    in a NUL byte, so the standard library is enough."""

    def __init__(self):
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()

        def onto_fds_3_and_4():
            read, write = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser_read, from_browser_write))
            os.dup2(read, 3)
            os.dup2(write, 4)

        self._profile = tempfile.TemporaryDirectory()
        self._process = subprocess.Popen(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile.name}", "--remote-debugging-pipe"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=onto_fds_3_and_4,
            close_fds=False,
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._pending = b""
        self._last_id = 0

    def command(self, method: str, session: str | None = None, **params):
        self._last_id += 1
        message = {"id": self._last_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:  # events arrive between the replies; none is needed here
            reply = self._message()
            if reply.get("id") == self._last_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def _message(self) -> dict:
        while b"\0" not in self._pending:
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._pending += chunk
        raw, _, self._pending = self._pending.partition(b"\0")
        return json.loads(raw)

    def open(self, url: str) -> str:
        """A new tab on `url`, once the page has loaded and MathJax has typeset it; returns its session."""
        target = self.command("Target.createTarget", url="about:blank")["targetId"]
        session = self.command("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.command("Page.navigate", session=session, url=url)
        ready = self.evaluate(
            session,
            """new Promise(resolve => {
                const started = Date.now();
                const poll = () => {
                    if (document.readyState === "complete" && window.MathJax && MathJax.startup
                        && MathJax.startup.promise) {
                        MathJax.startup.promise.then(() => resolve(location.href));
                    } else if (Date.now() - started > TIMEOUT_MS) resolve(null); else setTimeout(poll, 50);
                };
                poll();
            })""".replace("TIMEOUT_MS", str(TIMEOUT_MS)),
        )
        assert ready == url, f"{url} did not load (or MathJax did not start) within {TIMEOUT_MS} ms"
        return session

    def evaluate(self, session: str, expression: str):
        result = self.command(
            "Runtime.evaluate", session=session, expression=expression, awaitPromise=True, returnByValue=True
        )
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def screenshot(self, session: str, name: str):
        folder = os.environ.get("LAMBDA_TRL_DOCS_SCREENSHOTS")
        if folder:
            shot = self.command("Page.captureScreenshot", session=session, format="png", captureBeyondViewport=True)
            Path(folder).mkdir(parents=True, exist_ok=True)
            (Path(folder) / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))

    def close(self):
        self._process.terminate()
        self._process.wait(timeout=30)
        os.close(self._to_browser)
        os.close(self._from_browser)
        self._profile.cleanup()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built as `make docs` builds it (--strict), into a scratch folder; yields (folder, served URL)."""
    site_dir = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-4000:]
    with serve_directory(site_dir) as url:
        yield site_dir, url


@pytest.fixture(scope="module")
def browser():
    opened = Browser()
    yield opened
    opened.close()


# The page's prose: the article without its code (the BibTeX entry on the home page holds a raw $\lambda$).
PROSE = """(() => {
    const article = document.querySelector('article').cloneNode(true);
    article.querySelectorAll('pre, code').forEach(code => code.remove());
    return article.textContent;
})()"""
TYPESET = """(() => {
    const marked = [...document.querySelectorAll('article .arithmatex')];
    return {
        marked: marked.length,
        typeset: marked.filter(element => element.querySelector('mjx-container svg')).length,
        errors: document.querySelectorAll('[data-mjx-error], mjx-merror').length,
    };
})()"""


@pytest.mark.parametrize("page", ["api/weighting/", "api/trainer/", "api/grpo-lambda/", "how-it-works/", ""])
def test_equations_are_typeset(site, browser, page):
    _, url = site
    session = browser.open(f"{url}/{page}")
    browser.screenshot(session, page.strip("/").replace("/", "-") or "index")
    counts = browser.evaluate(session, TYPESET)
    assert counts["marked"] >= 3, counts
    assert counts["typeset"] == counts["marked"] and counts["errors"] == 0, counts
    prose = browser.evaluate(session, PROSE)
    for raw in ("$", "\\mathcal", "\\frac", "\\hat", "\\mathrm", "\\(", "\\["):
        assert raw not in prose, f"raw LaTeX {raw!r} left as text on /{page}"


def _plots(notebook: Path) -> int:
    cells = json.loads(notebook.read_text())["cells"]
    return sum("image/png" in output.get("data", {}) for cell in cells for output in cell.get("outputs", []))


@pytest.mark.parametrize("name", ["01_token_preference", "02_train_on_cpu"])
def test_notebook_pages_show_their_plots(site, browser, name):
    _, url = site
    expected = _plots(ROOT / "notebooks" / f"{name}.ipynb")
    assert expected >= 1
    session = browser.open(f"{url}/notebooks/{name}/")
    browser.screenshot(session, f"notebook-{name}")
    images = browser.evaluate(
        session,
        """[...document.querySelectorAll('.jupyter-wrapper img')].map(image => ({
            png: image.src.startsWith('data:image/png;base64,'), width: image.naturalWidth,
            height: image.naturalHeight, shown: image.getBoundingClientRect().width}))""",
    )
    plots = [image for image in images if image["png"]]
    assert len(plots) == expected, images
    assert all(plot["width"] > 200 and plot["height"] > 100 and plot["shown"] > 200 for plot in plots), plots
    # The notebooks' Markdown math ($...$) is typeset too.
    markdown = browser.evaluate(
        session,
        """[...document.querySelectorAll('.jp-RenderedMarkdown')].map(cell => ({
            math: cell.querySelectorAll('mjx-container').length, text: cell.innerText}))""",
    )
    if name == "01_token_preference":
        assert sum(cell["math"] for cell in markdown) >= 5
    assert not any("$" in cell["text"] for cell in markdown)


def _own_fields(cls) -> list[str]:
    own = cls.__dict__["__annotations__"]
    return [field.name for field in dataclasses.fields(cls) if field.name in own]


CONFIG_FIELDS = [
    name for cls in (LambdaGRPOConfig, LambdaReturnGRPOConfig, TrainScriptArguments) for name in _own_fields(cls)
]


def test_search_index_holds_the_config_fields(site, browser):
    site_dir, url = site
    index = json.loads((site_dir / "search" / "search_index.json").read_text())
    text = " ".join(doc["text"] for doc in index["docs"] if doc["location"].startswith("configuration/"))
    missing = [name for name in CONFIG_FIELDS if name not in text]
    assert not missing, missing
    # And the search box finds one in the browser (Material's search worker reads that index).
    session = browser.open(f"{url}/")
    found = browser.evaluate(
        session,
        """new Promise(resolve => {
            const query = document.querySelector('[data-md-component=search-query]');
            query.focus();
            query.value = 'lambda_lr_follows_schedule';
            query.dispatchEvent(new Event('input', {bubbles: true}));
            query.dispatchEvent(new KeyboardEvent('keyup', {bubbles: true, key: 'e'}));
            const started = Date.now();
            const poll = () => {
                const hits = [...document.querySelectorAll('.md-search-result__item a')].map(a => a.href);
                if (hits.length || Date.now() - started > TIMEOUT_MS) resolve(hits); else setTimeout(poll, 100);
            };
            poll();
        })""".replace("TIMEOUT_MS", str(TIMEOUT_MS)),
    )
    browser.screenshot(session, "search")
    assert any("/configuration/" in hit for hit in found), found
