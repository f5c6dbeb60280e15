"""Checks of a built static site (``tools/build_site.py``); run by ``.ci/site`` after it builds one.

    .venv/bin/python -m pytest -n 0 tests/site --site _site     # or COURSE_SITE_DIR=_site

The main test suite leaves this folder out: these tests read a site that a build made first.
Every lesson in ``notebooks/`` and every lab copy in ``labs/`` must have a page that the landing
page links to, with the notebook's outputs in it, and no page may show a traceback or a dead widget.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[2]
LESSONS = sorted((ROOT / "notebooks").glob("*.ipynb"))
LABS = sorted((ROOT / "labs").glob("*.ipynb"))
PAGES = [f"notebooks/{p.stem}.html" for p in LESSONS] + [f"labs/{p.stem}.html" for p in LABS]
# What a page must not show in its outputs: an exception, or a widget a static page cannot draw.
BROKEN = (
    "Traceback (most recent call last)",
    "Error displaying widget",
    "Loading widget",
    "widget-view+json",
)


@pytest.fixture(scope="session")
def site(request) -> Path:
    path = Path(
        request.config.getoption("--site", default=None) or os.environ.get("COURSE_SITE_DIR", "_site")
    )
    if not (path / "index.html").is_file():
        pytest.fail(f"No site at {path}: build one first (python tools/build_site.py --out {path}).")
    return path


def _soup(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def _outputs(page: BeautifulSoup) -> list:
    return page.select("div.cell_output")


def test_the_landing_page_links_every_lesson_and_lab_in_order(site):
    index = _soup(site / "index.html")
    article = index.select_one("article") or index
    links = [a["href"].split("#")[0] for a in article.select("a[href]")]
    in_table = [link for link in links if link in PAGES]
    missing = [p for p in PAGES if p not in in_table]
    assert not missing, f"the landing page does not link to {missing}"
    lessons = [link for link in in_table if link.startswith("notebooks/")]
    assert lessons == sorted(lessons), "lessons are not listed in course order"
    navigation = [a["href"].split("#")[0] for a in index.select("nav a[href]")]
    assert [p for p in PAGES if p not in navigation] == [], "the side navigation misses pages"


@pytest.mark.parametrize("page", PAGES)
def test_every_notebook_page_shows_its_outputs(site, page):
    path = site / page
    assert path.is_file(), f"{page} was not built"
    soup = _soup(path)
    outputs = _outputs(soup)
    assert len(outputs) >= 3, f"{page} shows {len(outputs)} cell outputs: was the notebook executed?"
    text = " ".join(o.get_text(" ") for o in outputs)
    if page.startswith("labs/"):
        # The learner copy, run as handed out: its checks say "not done yet", and no answers are shown.
        assert "not done yet" in text, f"{page} does not show its checks' 'not done yet'"
        assert "SOLUTION" not in soup.get_text(), f"{page} shows solution markers"
    else:
        figures = soup.select("div.plotly-graph-div")
        assert "checkpoint ·" in text or figures, f"{page} shows neither a checkpoint line nor a figure"


@pytest.mark.parametrize("page", PAGES)
def test_no_page_shows_a_traceback_or_a_dead_widget(site, page):
    soup = _soup(site / page)
    assert not soup.select(".output.traceback, .output.error"), f"{page} shows an error output"
    for output in _outputs(soup):
        text = str(output)
        for bad in BROKEN:
            assert bad not in text, f"{page} shows {bad!r} in an output:\n{output.get_text(' ')[:500]}"


def test_figures_and_maths_need_no_network(site):
    assert (site / "_static" / "plotly.min.js").is_file()
    assert (site / "_static" / "mathjax" / "MathJax.js").is_file()
    for page in ["index.html", *PAGES]:
        html = (site / page).read_text(encoding="utf-8")
        remote = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)"', html)
        assert not remote, f"{page} loads {remote} from the network"
    lesson = _soup(site / PAGES[0])
    assert any("plotly.min.js" in s.get("src", "") for s in lesson.select("script")), "plotly.js not loaded"


def test_the_solutions_are_not_published(site):
    assert not (site / "labs" / "solutions").exists()
    assert not list(site.rglob("*solutions*.html"))
