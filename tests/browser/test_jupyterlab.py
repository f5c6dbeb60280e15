"""What a learner sees: lessons run in JupyterLab in a real (headless) browser.

For each notebook, the test opens it in JupyterLab, runs all cells, and checks the page, not the
saved file:

- every code cell ran, and no cell shows an error or a traceback;
- every ipywidget rendered (no "Error displaying widget", nothing stuck on "Loading widget"),
  and moving its first control redraws its figure through the kernel;
- every plotly figure the kernel sent is drawn (a ``.js-plotly-plot`` with SVG in it);
- the live training plot (``utils.live.LivePlot``) is one figure, updated in place, that grew
  while the model trained.

Screenshots go to ``test-artifacts/browser/<notebook>/`` (or ``$BROWSER_ARTIFACTS``).
Run it on its own (the main suite leaves it out): ``python -m pytest tests/browser -n 0``.
``BROWSER_NOTEBOOKS=a.ipynb,b.ipynb`` picks other lessons (or absolute paths to any notebook);
``BROWSER_TIMEOUT`` (s) caps one notebook's run.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

#: 00 and 04 for their widget explorers and the live plot; 05b for a table figure inside a widget (the beam)
#: and heatmaps on word axes; 05a for its heatmap on categorical axes (the learning rate × batch size);
#: 05c for the masks over scenes in a widget; 08a for the latent-space walk (a slider) and the sampling grid.
DEFAULT_NOTEBOOKS = (
    "00_start_here.ipynb",
    "04_convolutional_networks.ipynb",
    "05a_the_craft_of_training.ipynb",
    "05b_recurrent_networks_and_seq2seq.ipynb",
    "05c_detection_and_segmentation.ipynb",
    "08a_autoencoders_vaes_and_diffusion.ipynb",
)
NOTEBOOKS = os.environ.get("BROWSER_NOTEBOOKS", ",".join(DEFAULT_NOTEBOOKS)).split(",")
#: The default notebooks with widgets: finding none there is a failure.
EXPECT_WIDGETS = {
    "00_start_here.ipynb",
    "04_convolutional_networks.ipynb",
    "05b_recurrent_networks_and_seq2seq.ipynb",
    "05c_detection_and_segmentation.ipynb",
    "08a_autoencoders_vaes_and_diffusion.ipynb",
}
RUN_TIMEOUT = float(os.environ.get("BROWSER_TIMEOUT", "300"))
KERNEL = "python3"  # the kernelspec our notebooks name in their metadata

# The notebook panel whose file is `path`, and its cells, from the app JupyterLab exposes.
_PANEL = """
const panelFor = (path) => {
  const app = window.jupyterapp;
  if (!app) return null;
  for (const w of app.shell.widgets('main')) if (w.context && w.context.path === path) return w;
  return null;
};
const codeCells = (panel) => panel.content.widgets.filter(
  (c) => c.model.type === 'code' && c.model.sharedModel.getSource().trim() !== '');
"""

_STATE = (
    "(path) => {"
    + _PANEL
    + """
  const dialogs = [...document.querySelectorAll('.jp-Dialog')].map((d) => d.innerText.slice(0, 200));
  const panel = panelFor(path);
  if (!panel) return {found: false, dialogs};
  const kernel = panel.sessionContext.session?.kernel;
  let code = 0, ran = 0, running = 0, errors = 0;
  for (const c of codeCells(panel)) {
    code++;
    if (c.model.executionCount) ran++;
    if ((c.node.querySelector('.jp-InputPrompt')?.innerText || '').includes('*')) running++;
    for (let i = 0; i < c.model.outputs.length; i++) if (c.model.outputs.get(i).type === 'error') errors++;
  }
  return {found: true, dialogs, kernel: kernel?.name ?? null, status: kernel?.status ?? null,
          connection: kernel?.connectionStatus ?? null, code, ran, running, errors};
}"""
)

# Record every state of each live plot's figure (points per trace), sampled every 100 ms in the page.
_SAMPLE_LIVE = (
    "(path) => {"
    + _PANEL
    + """
  const cells = codeCells(panelFor(path)).filter((c) => /LivePlot\\(/.test(c.model.sharedModel.getSource()));
  window.__live = cells.map(() => []);
  // and count the plotly renderers JupyterLab creates in each: one per update, if updates redraw
  window.__liveRenders = cells.map(() => 0);
  cells.forEach((c, k) => new MutationObserver((records) => {
    for (const r of records) for (const n of r.addedNodes) {
      if (n.nodeType !== 1) continue;
      window.__liveRenders[k] += (n.matches('.jp-RenderedPlotly') ? 1 : 0) + n.querySelectorAll('.jp-RenderedPlotly').length;
    }
  }).observe(c.node, {childList: true, subtree: true}));
  window.__liveTimer = setInterval(() => cells.forEach((c, k) => {
    const gd = c.node.querySelector('.js-plotly-plot');
    if (!gd || !gd._fullData) return;
    const state = gd._fullData.map((t) => (t.x ? t.x.length : 0)).join(',');
    const seen = window.__live[k];
    if (seen[seen.length - 1] !== state) seen.push(state);
  }), 100);
  return cells.length;
}"""
)

# Everything the learner can see in each code cell's outputs; tags each cell node for locators.
_REPORT = (
    "(path) => {"
    + _PANEL
    + """
  // points in a trace's x as the kernel sent it: a list, or plotly's base64 typed array
  const size = {f8: 8, f4: 4, i4: 4, u4: 4, i2: 2, u2: 2, i1: 1, u1: 1, i8: 8, u8: 8};
  const count = (x) => !x ? 0 : Array.isArray(x) ? x.length
    : x.shape ? [].concat(x.shape).reduce((a, b) => a * b, 1) : x.bdata ? atob(x.bdata).length / size[x.dtype] : 0;
  // (categories are strings: a string has a length too, and iterating it never ends in a number)
  const sum = (a) => { let s = 0; if (!a || typeof a === 'string') return s;
    for (const v of a) s += (typeof v === 'number') ? v : (v && v.length !== undefined ? sum(v) : 0); return s; };
  return codeCells(panelFor(path)).map((c, k) => {
    c.node.setAttribute('data-browser-test', String(k));
    const outputs = [];
    for (let i = 0; i < c.model.outputs.length; i++) {
      const o = c.model.outputs.get(i);
      const figure = (o.data || {})['application/vnd.plotly.v1+json'];
      outputs.push({type: o.type, mimes: Object.keys(o.data || {}),
                    sent: figure ? (figure.data || []).map((t) => count(t.x)) : null});
    }
    const areas = [...c.node.querySelectorAll('.jp-OutputArea-output')];
    const errors = [];
    for (let i = 0; i < c.model.outputs.length; i++) {
      const o = c.model.outputs.get(i).toJSON();
      if (o.output_type === 'error') errors.push(`${o.ename}: ${o.evalue}`);
    }
    const text = (sel) => [...c.node.querySelectorAll(sel)].map((e) => e.innerText.slice(0, 3000));
    return {
      index: k,
      id: c.model.id,
      source: c.model.sharedModel.getSource().split('\\n')[0].slice(0, 100),
      live: /LivePlot\\(/.test(c.model.sharedModel.getSource()),
      executionCount: c.model.executionCount,
      outputs,
      plots: [...c.node.querySelectorAll('.js-plotly-plot')].map((gd) => ({
        svg: gd.querySelector('svg.main-svg') !== null,
        inWidget: gd.closest('.jupyter-widgets') !== null,
        points: (gd._fullData || []).map((t) => (t.x ? t.x.length : 0)),
        signature: JSON.stringify((gd._fullData || []).map((t) => [t.name, sum(t.y), sum(t.z)])),
      })),
      // the output area's children are the cell's outputs, in order
      widgetViews: outputs.map((o, i) => [o, c.outputArea.widgets[i]]).filter(
        ([o, w]) => o.mimes.includes('application/vnd.jupyter.widget-view+json')).map(([o, w]) => ({
          rendered: w !== undefined && w.node.querySelector('.jupyter-widgets') !== null,
          text: w ? w.node.innerText.slice(0, 300) : '(no output node)'})),
      widgetErrors: areas.map((e) => e.innerText).filter((t) => t.includes('Error displaying widget')),
      loading: areas.map((e) => e.innerText).filter((t) => t.includes('Loading widget')).length,
      stderr: text('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'),
      errors,
    };
  });
}"""
)


def _wait(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _accept_dialogs(page, log: list[str]) -> None:
    """Accept any modal dialog (e.g. "Select Kernel"), choosing our kernel if it offers a choice."""
    for dialog in page.locator(".jp-Dialog").all():
        log.append("dialog: " + dialog.inner_text()[:150].replace("\n", " | "))
        select = dialog.locator("select")
        if select.count():
            try:
                select.first.select_option(value=KERNEL, timeout=2000)
            except Exception:  # our kernel's option is named differently: keep the default
                pass
        accept = dialog.locator(".jp-mod-accept")
        if accept.count():
            accept.first.click(timeout=5000)
        else:
            page.keyboard.press("Enter")


def _open(page, lab, notebook: str, log: list[str]) -> str:
    """Open the notebook in a fresh workspace, attached to a kernel we started, and wait for it."""
    path = f"notebooks/{notebook}"
    # Starting the session ourselves means JupyterLab finds a kernel for the notebook and never
    # needs to ask for one (its "Select Kernel" dialog blocked "run all" in earlier attempts).
    lab.api(
        "POST", "sessions", {"path": path, "name": notebook, "type": "notebook", "kernel": {"name": KERNEL}}
    )
    workspace = Path(notebook).stem.replace("_", "-")
    page.goto(f"{lab.url}/lab/workspaces/{workspace}/tree/{path}?token={lab.token}")
    page.wait_for_function(
        "(path) => {" + _PANEL + "return panelFor(path) !== null; }", arg=path, timeout=180_000
    )
    start = time.monotonic()
    forced = False

    def ready():
        _accept_dialogs(page, log)
        state = page.evaluate(_STATE, path)
        nonlocal forced
        if state and state.get("found") and state["kernel"] is None and not forced:
            if time.monotonic() - start > 60:  # still no kernel: ask for ours explicitly
                log.append("no kernel 60 s after the notebook opened: changeKernel(python3)")
                page.evaluate(
                    "(path) => {"
                    + _PANEL
                    + f"panelFor(path).sessionContext.changeKernel({{name: '{KERNEL}'}}); }}",
                    path,
                )
                forced = True
        ok = state and state.get("found") and state["status"] == "idle" and state["connection"] == "connected"
        return state if ok else None

    state = _wait(ready, 150, f"{notebook} to open with an idle {KERNEL} kernel", 1.0)
    assert state["kernel"] == KERNEL, state
    # "run all" acts on the current notebook: make sure it is ours, with its file and kernel ready
    page.evaluate(
        "async (path) => {"
        + _PANEL
        + """const panel = panelFor(path);
        window.jupyterapp.shell.activateById(panel.id);
        await panel.context.ready;
        await panel.sessionContext.ready;
        return window.jupyterapp.shell.currentWidget === panel; }""",
        path,
    )
    _wait(
        lambda: page.evaluate(
            "(path) => {" + _PANEL + "return window.jupyterapp.shell.currentWidget === panelFor(path); }",
            path,
        ),
        30,
        f"{notebook} to be the current notebook",
    )
    return path


def _run_all(page, path: str, log: list[str]) -> dict:
    run = "() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); return true; }"
    page.evaluate(run)  # not awaited: the command's promise resolves only when every cell has run
    started, retried = time.monotonic(), False

    def finished():
        nonlocal retried
        _accept_dialogs(page, log)
        s = page.evaluate(_STATE, path)
        idle = s["status"] == "idle" and s["running"] == 0
        if idle and s["ran"] == 0 and not retried and time.monotonic() - started > 20:
            log.append(f"run-all had not started after 20 s ({s}); running it again")
            page.evaluate(run)
            retried = True
        return s if idle and (s["ran"] == s["code"] or s["errors"]) else None

    return _wait(finished, RUN_TIMEOUT, "all cells to run", 1.0)


# What a widget's figure shows, to tell a redraw from the figure before: each trace's name, its y values
# and the size of its z (charts, heatmaps), or the cells of a table trace (which has neither).
_FIGURE_DATA_JS = (
    "(gd) => (gd._fullData || []).map((t) => [t.name, t.y ? Array.from(t.y).slice(0, 50) : null,"
    " t.z ? JSON.stringify(t.z).length : null, t.cells ? JSON.stringify(t.cells.values) : null])"
)


def _first_control_redraws(page, cell) -> str:
    """Move the widget's first slider (or pick another drop-down entry); its figure must redraw.

    A drag that lands while the page is still settling can leave the slider where it was; then the
    slider's value (its readout) has not changed, and the harness moves it by keyboard instead. The
    figure must still redraw; if it does not, the failure says what the page showed.
    """
    old = "(node) => { for (const gd of node.querySelectorAll('.jupyter-widgets .js-plotly-plot')) gd.__old = true; }"
    cell.evaluate(old)
    before = cell.evaluate(
        "(node) => JSON.stringify([...node.querySelectorAll('.jupyter-widgets .js-plotly-plot')]"
        f".map({_FIGURE_DATA_JS}))"
    )
    state_js = (
        "(node, before) => { const now = [...node.querySelectorAll('.jupyter-widgets .js-plotly-plot')];"
        " const fresh = now.filter((gd) => !gd.__old && gd.querySelector('svg.main-svg'));"
        f" const sig = JSON.stringify(now.map({_FIGURE_DATA_JS}));"
        " const readout = node.querySelector('.widget-readout');"
        " return {figures: now.length, fresh: fresh.length, changed: sig !== before,"
        " readout: readout ? readout.innerText : null}; }"
    )

    def state():
        return cell.evaluate(state_js, before)

    def redrawn():
        s = state()
        return s["fresh"] > 0 and s["changed"]

    handle = cell.locator(".noUi-handle, .ui-slider-handle").first
    if handle.count():
        start = state()["readout"]
        handle.scroll_into_view_if_needed()
        box = handle.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] / 2 + 60, box["y"] + box["height"] / 2, steps=5)
        page.mouse.up()
        how = "dragged the slider"
        try:
            _wait(lambda: state()["readout"] != start, 5, "the slider's value to change")
        except AssertionError:
            handle.focus()
            for _ in range(3):
                page.keyboard.press("ArrowRight")
            how = f"dragged the slider (its value stayed {start!r}), then moved it with the arrow keys"
    else:
        select = cell.locator(".jupyter-widgets select").first
        select.scroll_into_view_if_needed()
        options = select.locator("option").all_inner_texts()
        current = select.evaluate("(s) => s.options[s.selectedIndex].text")
        choice = next(o for o in options if o != current)
        select.select_option(label=choice)
        how = f"chose {choice!r} in the drop-down"

    try:
        _wait(redrawn, 30, f"the widget's figure to redraw after it {how}")
    except AssertionError as error:
        raise AssertionError(f"{error}; what the widget showed then: {state()}") from None
    return how


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebook_in_jupyterlab(notebook, lab, browser, artifacts):
    if Path(notebook).is_absolute():  # a notebook from elsewhere (BROWSER_NOTEBOOKS=/path/x.ipynb)
        shutil.copy(notebook, lab.root / "notebooks")
        notebook = Path(notebook).name
    shots = artifacts / Path(notebook).stem
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    log: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    blocked: list[str] = []

    def offline(route):  # the course must work offline: nothing but our server
        if route.request.url.startswith(lab.url):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", offline)
    page = context.new_page()
    console_errors: list[str] = []
    page.on("pageerror", lambda error: console_errors.append(str(error)))
    t0 = time.monotonic()
    problems: list[str] = []
    try:
        path = _open(page, lab, notebook, log)
        opened = time.monotonic() - t0
        live_cells = page.evaluate(_SAMPLE_LIVE, path)
        state = _run_all(page, path, log)
        ran = time.monotonic() - t0 - opened
        # widgets and figures render after the kernel is idle: give them a moment to settle
        _wait(
            lambda: all(c["loading"] == 0 for c in page.evaluate(_REPORT, path)),
            30,
            "widgets to finish loading",
        )
        time.sleep(1.0)
        live_states, live_renders = page.evaluate(
            "() => { clearInterval(window.__liveTimer); return [window.__live, window.__liveRenders]; }"
        )
        cells = page.evaluate(_REPORT, path)
        (shots / "cells.json").write_text(json.dumps(cells, indent=1, ensure_ascii=False))

        if state["ran"] != state["code"]:
            problems.append(f"only {state['ran']} of {state['code']} code cells ran")
        figures = widgets = 0
        for cell in cells:
            where = f"cell {cell['index']} ({cell['id']}: {cell['source']!r})"
            for error in cell["errors"]:
                problems.append(f"{where} raised {error[:1500]}")
            for text in cell["stderr"]:  # (JupyterLab draws an error as stderr too: reported once)
                if "Traceback" in text and not cell["errors"]:
                    problems.append(f"{where} printed an error on stderr: {text[:1500]}")
                else:
                    log.append(f"{where} stderr: {text[:300]}")
            for text in cell["widgetErrors"]:
                problems.append(f"{where}: {text[:300]}")
            for view in cell["widgetViews"]:
                if not view["rendered"]:
                    problems.append(f"{where}: a widget did not render: {view['text']!r}")
            # each plotly figure the kernel sent must be drawn (figures inside widgets are counted apart)
            sent = sum("application/vnd.plotly.v1+json" in o["mimes"] for o in cell["outputs"])
            drawn = sum(p["svg"] and not p["inWidget"] for p in cell["plots"])
            if drawn != sent:
                problems.append(f"{where}: {sent} plotly figure(s) sent, {drawn} drawn")
            else:  # and drawn with the data the kernel sent last (not a stale first version)
                sent_points = [o["sent"] for o in cell["outputs"] if o["sent"] is not None]
                drawn_points = [p["points"] for p in cell["plots"] if p["svg"] and not p["inWidget"]]
                for got, want in zip(drawn_points, sent_points, strict=True):
                    if got != want:
                        problems.append(
                            f"{where}: a figure shows {got} points per trace, the kernel sent {want}"
                        )
            for p in cell["plots"]:
                if p["inWidget"] and not p["svg"]:
                    problems.append(f"{where}: a plotly figure inside a widget was not drawn")
            figures += drawn
            widgets += len(cell["widgetViews"])
            if cell["widgetViews"] and not cell["widgetErrors"]:
                if any(p["inWidget"] for p in cell["plots"]):
                    locator = page.locator(f'[data-browser-test="{cell["index"]}"]')
                    log.append(f"{where}: {_first_control_redraws(page, locator)}: the figure redrew")
                    locator.screenshot(path=str(shots / f"{cell['index']:02d}-{cell['id']}-widget.png"))
            if cell["live"]:
                locator = page.locator(f'[data-browser-test="{cell["index"]}"]')
                locator.screenshot(path=str(shots / f"{cell['index']:02d}-{cell['id']}-live.png"))
        if widgets == 0 and notebook in EXPECT_WIDGETS:
            problems.append("no ipywidget in the notebook: the widget check checked nothing")

        live = [c for c in cells if c["live"]]
        assert len(live) == live_cells
        for cell, states, renders in zip(live, live_states, live_renders, strict=True):
            where = f"live plot in cell {cell['index']} ({cell['id']})"
            plots = [p for p in cell["plots"] if not p["inWidget"]]
            if len(plots) != 1:
                problems.append(f"{where}: {len(plots)} figures, expected one updated in place")
                continue
            points = plots[0]["points"]
            if len(points) < 2 or len(set(points)) != 1 or points[0] < 1:
                problems.append(
                    f"{where}: traces with {points} points (want loss and val_loss, equal lengths)"
                )
            elif points[0] > 1 and renders < 2:  # more than one epoch: drawn at the first epoch, then again
                problems.append(f"{where}: drawn {renders} time(s) during training, not updated in place")
            # what the page showed, sampled every 100 ms (a busy browser may skip intermediate states)
            log.append(f"{where}: drawn {renders} times; points per trace over time {states}")

        log.append(
            f"{notebook}: opened in {opened:.0f} s, ran {state['code']} cells in {ran:.0f} s; "
            f"{widgets} widget(s), {figures} plotly figure(s), {len(live)} live plot(s)"
        )
    finally:
        try:
            page.screenshot(path=str(shots / "final.png"))
        except Exception as error:  # a crashed page must not hide the real failure
            log.append(f"no final screenshot: {error}")
        for session in lab.api("GET", "sessions") or []:  # free the kernel before the next notebook
            if session["path"].endswith(notebook):
                lab.api("DELETE", f"sessions/{session['id']}")
        context.close()
        log.extend(f"blocked request (offline): {url}" for url in blocked)
        log.extend(f"page error: {e}" for e in console_errors)
        log.extend(f"screenshot: {p}" for p in sorted(shots.glob("*.png")))
        (shots / "log.txt").write_text("\n".join(log) + "\n")
        print("\n".join(log))
    assert not problems, "\n".join(problems)
