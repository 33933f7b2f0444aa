"""``knotsense report``: self-contained pages, opened in headless Chromium.

The browser tests need Debian's ``chromium`` (``.ci/run`` installs it where it
can) and Playwright's Python driver; without them they skip with the reason.
"""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from knotsense.cli.main import main
from knotsense.study import run_batch

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class _Links(HTMLParser):
    """Every src/href attribute of the page's tags (not text inside scripts)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [v or "" for k, v in attrs if k in ("src", "href")]


def _self_contained(page: str) -> None:
    parser = _Links()
    parser.feed(page)
    assert parser.links == []


@pytest.fixture(scope="module")
def pages(recordings: list[Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("report")
    run_batch(recordings[:8], out / "dataset", workers=1)
    session, study = out / "session.html", out / "study.html"
    assert main(["report", str(recordings[0]), "-o", str(session)]) == 0
    assert main(["report", str(out / "dataset"), "-o", str(study)]) == 0
    return {"session": session, "study": study, "recording": recordings[0]}


def test_pages_are_self_contained(pages) -> None:
    for name in ("session", "study"):
        text = pages[name].read_text()
        _self_contained(text)
        assert "Bokeh" in text and 'id="plots"' in text


def test_report_errors_are_one_line(tmp_path, capsys) -> None:
    assert main(["report", str(tmp_path / "nope.ksr"), "-o", str(tmp_path / "r.html")]) == 1
    assert "no such file or folder" in capsys.readouterr().err
    bad = tmp_path / "bad.ksr"
    bad.write_bytes(b"junk")
    assert main(["report", str(bad), "-o", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a knotsense recording" in err
    assert main(["report", str(tmp_path), "-o", str(tmp_path / "r.html")]) == 1
    assert "not a knotsense batch dataset" in capsys.readouterr().err


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield b
        b.close()


def _open(browser, path: Path):
    page = browser.new_page()
    problems: list[str] = []

    def console(message) -> None:
        if message.type in ("error", "warning"):
            problems.append(message.text)

    def request(req) -> None:
        if not req.url.startswith(("file:", "data:", "blob:")):
            problems.append(f"request {req.url}")  # the page must need no network

    page.on("console", console)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", request)
    page.goto(path.as_uri())
    page.wait_for_function("window.Bokeh && Bokeh.documents.length > 0", timeout=20_000)
    page.wait_for_selector("#plots canvas, #plots .bk-Canvas", state="attached", timeout=20_000)
    return page, problems


def test_session_page_in_chromium(browser, pages, capsys) -> None:
    page, problems = _open(browser, pages["session"])
    assert problems == []
    assert page.evaluate("Bokeh.documents[0].roots().length") == 1
    names = page.evaluate("Bokeh.documents[0].roots().map(r => r.name)")
    assert names == ["force_plot"]
    rows = page.locator("#events tbody tr").count()
    assert main(["analyze", str(pages["recording"]), "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    assert rows == len(expected["events"]) > 0
    page.close()


def test_study_page_in_chromium(browser, pages) -> None:
    page, problems = _open(browser, pages["study"])
    assert problems == []
    assert page.locator("#sessions tbody tr").count() == 8
    plots = page.evaluate(
        "Bokeh.documents[0].all_models ? [...Bokeh.documents[0].all_models]"
        ".filter(m => m.name && m.name.endsWith('_plot')).map(m => m.name).sort() : []"
    )
    assert plots == ["band_plot", "holds_plot", "releases_plot"]
    page.close()


def test_report_refuses_a_device_url_in_one_line(tmp_path, capsys) -> None:
    assert main(["report", "sim://?seed=1", "-o", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a device URL" in err and "knotsense record" in err
    assert main(["report", str(tmp_path), "-o", "sim://"]) == 1
    assert "-o expects an HTML file" in capsys.readouterr().err
