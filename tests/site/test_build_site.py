"""Unit tests of tools/build_site.py's pieces that need no build: output clean-up and notebook selection."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import plotly.graph_objects as go
import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("build_site", ROOT / "tools" / "build_site.py")
build_site = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_site)


def _cell(*outputs):
    cell = nbformat.v4.new_code_cell("explorer()")
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    return cell


def test_plotly_figures_become_html_that_uses_the_sites_plotly_js():
    fig = go.Figure(go.Scatter(x=[1, 2, 3], y=[4, 5, 7], name="loss"))
    bundle = {
        build_site.PLOTLY_MIME: fig.to_plotly_json(),
        "text/html": '<script>require(["plotly"])</script>',
    }
    nb = nbformat.v4.new_notebook(
        cells=[_cell({"output_type": "display_data", "data": bundle, "metadata": {}})]
    )
    build_site.postprocess(nb)
    data = nb.cells[0].outputs[0]["data"]
    assert build_site.PLOTLY_MIME not in data
    html = data["text/html"]
    assert "Plotly.newPlot" in html and "plotly-graph-div" in html
    assert "require(" not in html and "cdn.plot.ly" not in html  # no loader, no CDN: _static/plotly.min.js
    assert "[4,5,7]" in html.replace(" ", "")  # the figure's own data


def test_a_widget_becomes_a_note_above_the_figure_it_drew():
    widget = {
        "output_type": "execute_result",
        "execution_count": 1,
        "data": {
            build_site.WIDGET_MIME: {"model_id": "abc", "version_major": 2},
            "text/plain": "interactive(...)",
        },
        "metadata": {},
    }
    figure = {"output_type": "display_data", "data": {"text/html": "<div>figure</div>"}, "metadata": {}}
    nb = nbformat.v4.new_notebook(cells=[_cell(figure, widget), _cell(widget)])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    build_site.postprocess(nb)
    first, alone = nb.cells[0].outputs, nb.cells[1].outputs
    assert (
        "Interactive explorer" in first[0]["data"]["text/html"] and "Below" in first[0]["data"]["text/html"]
    )
    assert first[1]["data"]["text/html"] == "<div>figure</div>"
    assert "Below" not in alone[0]["data"]["text/html"]  # nothing drawn: no promise of a figure
    assert all(build_site.WIDGET_MIME not in o["data"] for o in first + alone)
    assert "widgets" not in nb.metadata


def test_select_takes_globs_keeps_order_and_refuses_the_solutions():
    picked = build_site.select(["notebooks/0[0-1]*.ipynb", "labs/lab01*.ipynb", "notebooks/00*.ipynb"])
    assert [p.relative_to(ROOT).as_posix() for p in picked] == [
        "notebooks/00_start_here.ipynb",
        "notebooks/01_tensors_and_gradients.ipynb",
        "labs/lab01_gradient_descent.ipynb",
    ]
    with pytest.raises(SystemExit, match="lab copies"):
        build_site.select(["labs/solutions/lab01*.ipynb"])
    with pytest.raises(SystemExit, match="No notebook matches"):
        build_site.select(["notebooks/99_nothing*.ipynb"])


def test_the_landing_page_pairs_each_lesson_with_its_lab():
    lessons = build_site.select(["notebooks/01*.ipynb", "notebooks/02*.ipynb"])
    labs = build_site.select(["labs/lab01*.ipynb"])
    page = build_site.landing_page(lessons, labs, "smoke", 12.0)
    row01 = next(line for line in page.splitlines() if line.startswith("| 01 |"))
    assert (
        "notebooks/01_tensors_and_gradients.ipynb" in row01 and "labs/lab01_gradient_descent.ipynb" in row01
    )
    row02 = next(line for line in page.splitlines() if line.startswith("| 02 |"))
    assert row02.endswith("|  |")  # lesson 02 has no lab
    assert "solutions/" not in page  # no link to a lab's solution


def test_labs_go_with_their_lettered_lesson_when_the_build_has_it():
    lessons = build_site.select(["notebooks/05*.ipynb"])  # 05, 05a, 05b, 05c
    labs = build_site.select(["labs/lab05*.ipynb"])  # lab05, lab05a, lab05b, lab05c
    assert [p.name[:3] for p in lessons] == ["05_", "05a", "05b", "05c"] and len(labs) == len(lessons)
    rows = {
        line.split("|")[1].strip(): line
        for line in build_site.landing_page(lessons, labs, "smoke", 1.0).splitlines()
        if line.startswith("| 05")
    }
    assert "labs/lab05_residual_block.ipynb" in rows["05"] and "lab05a" not in rows["05"]
    assert "labs/lab05a_the_craft_of_training.ipynb" in rows["05a"]
    assert "labs/lab05b_gru_and_beam_search.ipynb" in rows["05b"]
    assert "labs/lab05c_boxes_nms_and_map.ipynb" in rows["05c"]
    # without its lesson in the build, a lettered lab goes with the lesson of its digits
    only_05 = build_site.landing_page(lessons[:1], labs, "smoke", 1.0)
    row05 = next(line for line in only_05.splitlines() if line.startswith("| 05 |"))
    assert all(f"labs/{lab.name}" in row05 for lab in labs)
