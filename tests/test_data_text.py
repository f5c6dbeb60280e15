"""utils.data.python_docstrings: real labelled English from the standard library."""

import subprocess
import sys
from pathlib import Path

import pytest

from utils import data

REPO = Path(__file__).resolve().parents[1]


def test_python_docstrings_are_labelled_deterministic_and_quiet(capsys, recwarn):
    data._python_module_docstrings.cache_clear()
    pairs = data.python_docstrings()
    assert len(pairs) > 1000 and all(len(text) >= 200 for _, text in pairs)
    assert data.python_docstrings() == pairs
    texts = [text for _, text in pairs]
    assert len(set(texts)) == len(texts)
    modules = {name for name, _ in pairs}
    assert {"email.message", "logging", "json.decoder"} & modules
    assert len({name.split(".")[0] for name in modules}) > 50
    assert capsys.readouterr() == ("", "") and len(recwarn) == 0


def test_python_docstrings_labels_are_the_defining_modules():
    import email.message
    import inspect

    pairs = data.python_docstrings(min_chars=20)
    label = dict((text, name) for name, text in pairs)
    doc = inspect.cleandoc(email.message.Message.__doc__).strip()
    assert label[doc] == "email.message"
    # the same texts that python_text reads (it adds the pydoc help topics)
    assert set(label) <= set(data.python_text(min_chars=20))
    assert len(data.python_docstrings(min_chars=1000)) < len(pairs)


@pytest.mark.slow
def test_python_docstrings_in_a_fresh_interpreter_prints_and_warns_nothing():
    code = "import utils.data as d; p = d.python_docstrings(); assert len(p) > 1000"
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and out.stderr == ""


def test_docstring_families_are_real_labels_in_every_class():
    import email.message
    import inspect

    texts, labels, names = data.docstring_families()
    assert names == sorted(data.DOCSTRING_FAMILIES) and len(names) == 8
    assert len(texts) == len(labels) > 1000 and labels.dtype.kind == "i"
    assert set(labels.tolist()) == set(range(len(names)))
    assert min(len(t) for t in texts) >= 80
    doc = inspect.cleandoc(email.message.Message.__doc__).strip()
    assert names[labels[texts.index(doc)]] == "email"
    # every text comes from a module of its family
    module_of = {text: name for name, text in data.python_docstrings(80)}
    for text, label in zip(texts, labels, strict=True):
        assert module_of[text].split(".")[0] in data.DOCSTRING_FAMILIES[names[label]]
