"""Lab 02's checks: right pipelines pass however they are written (scikit-learn, pandas/NumPy, Keras layers),
each leak or slip is named by its own hint, placeholders are "not done yet", and a learner's exception never
shows course code. Leakage is found by behaviour: the checks probe with rows the learner's code never saw."""

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer, make_column_transformer
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from utils.checks import lab02 as ex

# ---------------------------------------------------------------------------------------------
# q1: split
# ---------------------------------------------------------------------------------------------


def split_by_class(frame, label, seed):
    rng = np.random.default_rng(seed)
    parts = ([], [], [])
    for _, group in frame.groupby(label):
        order = rng.permutation(len(group))
        cuts = np.split(order, [round(0.6 * len(group)), round(0.8 * len(group))])
        for part, rows in zip(parts, cuts, strict=True):
            part.append(group.iloc[rows])
    return tuple(pd.concat(p) for p in parts)


def split_sklearn(frame, label, seed, *, second=0.25, stratify=True):
    rest, test = train_test_split(
        frame, test_size=0.2, random_state=seed, stratify=frame[label] if stratify else None
    )
    train, val = train_test_split(
        rest, test_size=second, random_state=seed, stratify=rest[label] if stratify else None
    )
    return train.reset_index(drop=True), val, test  # a new index is fine: rows are found by content


def split_shared(frame, label, seed):
    train, val, test = split_sklearn(frame, label, seed)
    return train, val, pd.concat([test, train.iloc[:5]])


def split_fixed_seed(frame, label, seed):
    return split_sklearn(frame, label, 0)


def split_unseeded(frame, label, seed):
    return split_sklearn(frame, label, None)


Q1_MISTAKES = {
    "rows shared": (split_shared, "exactly one part"),
    "not stratified": (lambda f, lab, s: split_sklearn(f, lab, s, stratify=False), "class fractions"),
    "fraction of the rest": (lambda f, lab, s: split_sklearn(f, lab, s, second=0.2), "16 %"),
    "seed ignored": (split_fixed_seed, "from the seed"),
    "unseeded": (split_unseeded, "from the seed"),
    "one part": (lambda f, lab, s: f, "three parts"),
}

# ---------------------------------------------------------------------------------------------
# q2: the preprocessor
# ---------------------------------------------------------------------------------------------


def prep_sklearn(train, numeric, categorical, *, fill="median", unknown="ignore", order="fill first"):
    steps = [SimpleImputer(strategy=fill), StandardScaler()]
    numbers = make_pipeline(*(steps if order == "fill first" else steps[::-1]))
    if order == "no fill":
        numbers = StandardScaler()
    words = OneHotEncoder(handle_unknown=unknown, sparse_output=False)
    return ColumnTransformer([("n", numbers, numeric), ("c", words, categorical)]).fit(train)


def prep_pandas(train, numeric, categorical, *, ddof=0, refit=False):
    def learn(rows):
        median = rows[numeric].median()
        filled = rows[numeric].fillna(median)
        return (
            median,
            filled.mean(),
            filled.std(ddof=ddof),
            {c: sorted(rows[c].unique()) for c in categorical},
        )

    stats = learn(train)

    def transform(rows):
        median, mean, std, cats = learn(rows) if refit else stats
        hot = [(rows[c].to_numpy()[:, None] == np.array(v)[None]).astype(float) for c, v in cats.items()]
        return np.hstack([((rows[numeric].fillna(median) - mean) / std).to_numpy()] + hot)

    return transform


def prep_keras(train, numeric, categorical):
    import keras

    median = train[numeric].median()
    norm = keras.layers.Normalization()  # computes at the global policy: checked under mixed precision
    norm.adapt(train[numeric].fillna(median).to_numpy("float32"))
    lookups = {
        c: keras.layers.StringLookup(vocabulary=sorted(train[c].unique()), output_mode="one_hot")
        for c in categorical
    }  # one more column, for unknown categories: 0 on the training rows

    def transform(rows):
        parts = [norm(rows[numeric].fillna(median).to_numpy("float32"))]
        parts += [lookups[c](rows[c].to_numpy(str)) for c in categorical]
        return np.hstack([np.asarray(p, dtype="float32") for p in parts])

    return transform


SHARED = make_column_transformer(
    (make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), ex.NUMERIC),
    (OneHotEncoder(handle_unknown="ignore", sparse_output=False), ex.CATEGORICAL),
)


def prep_shared(train, numeric, categorical):
    return SHARED.fit(train)  # the same object every time: a second fit changes the first


Q2_MISTAKES = {
    "mean fill": (lambda *a: prep_sklearn(*a, fill="mean"), "the median"),
    "ddof=1": (lambda *a: prep_pandas(*a, ddof=1), "n − 1"),
    "scaled then filled": (lambda *a: prep_sklearn(*a, order="scale first"), "before filling"),
    "refit on new rows": (lambda *a: prep_pandas(*a, refit=True), "learns again"),
    "unknown category": (lambda *a: prep_sklearn(*a, unknown="error"), "must not stop it"),
    "shared state": (prep_shared, "build new objects"),
    "holes left": (lambda *a: prep_sklearn(*a, order="no fill"), "NaN"),
}

# ---------------------------------------------------------------------------------------------
# q3: the score
# ---------------------------------------------------------------------------------------------


def score(train, val, label, numeric, categorical, k, *, fit="train", select="train", on="val"):
    both = pd.concat([train, val])
    prep = prep_sklearn(both if fit == "all" else train, numeric, categorical)
    rows = both if select == "all" else train
    keep = SelectKBest(f_classif, k=k).fit(prep.transform(rows), rows[label])
    model = LogisticRegression(max_iter=1000).fit(keep.transform(prep.transform(train)), train[label])
    scored = train if on == "train" else val
    return model.score(keep.transform(prep.transform(scored)), scored[label])


def score_numpy(train, val, label, numeric, categorical, k):
    prep = prep_pandas(train, numeric, categorical)
    x_train, x_val, y = prep(train), prep(val), train[label].to_numpy()
    r = np.abs([np.corrcoef(col, y)[0, 1] for col in x_train.T])
    best = np.argsort(-np.nan_to_num(r), kind="stable")[:k]
    model = LogisticRegression(max_iter=1000).fit(x_train[:, best], y)
    return np.mean(model.predict(x_val[:, best]) == val[label].to_numpy())


Q3_MISTAKES = {
    "selected on all rows": (lambda *a: score(*a, select="all"), "chosen with the validation rows"),
    "fitted on all rows": (lambda *a: score(*a, fit="all"), "saw the validation rows"),
    "scored on train": (lambda *a: score(*a, on="train"), "score it on the validation rows"),
}

# ---------------------------------------------------------------------------------------------
# the tests
# ---------------------------------------------------------------------------------------------

RIGHT = [
    (ex.q1, split_by_class),
    (ex.q1, split_sklearn),
    (ex.q2, prep_sklearn),
    (ex.q2, prep_pandas),
    pytest.param(ex.q2, prep_keras, marks=pytest.mark.slow, id="prep_keras"),
    pytest.param(ex.q3, score, marks=pytest.mark.slow, id="score_sklearn"),
    pytest.param(ex.q3, score_numpy, marks=pytest.mark.slow, id="score_numpy"),
]


@pytest.mark.parametrize(("exercise", "answer"), RIGHT)
def test_right_answers_pass(exercise, answer):
    fb = exercise.evaluate(answer)
    assert fb.passed, str(fb)


@pytest.mark.slow
def test_keras_preprocessing_passes_under_mixed_precision(mixed_policy):
    fb = ex.q2.evaluate(prep_keras)
    assert fb.passed, str(fb)


def _cases(mistakes):
    return [pytest.param(answer, phrase, id=name) for name, (answer, phrase) in mistakes.items()]


@pytest.mark.parametrize(("answer", "phrase"), _cases(Q1_MISTAKES))
def test_q1_mistakes(answer, phrase):
    fb = ex.q1.evaluate(answer)
    assert fb.status == "incorrect" and phrase in str(fb), str(fb)


@pytest.mark.parametrize(("answer", "phrase"), _cases(Q2_MISTAKES))
def test_q2_mistakes(answer, phrase):
    fb = ex.q2.evaluate(answer)
    assert fb.status == "incorrect" and phrase in str(fb), str(fb)


@pytest.mark.slow
@pytest.mark.parametrize(("answer", "phrase"), _cases(Q3_MISTAKES))
def test_q3_leaks_are_found_by_their_scores(answer, phrase):
    fb = ex.q3.evaluate(answer)
    assert fb.status == "incorrect" and phrase in str(fb), str(fb)


def test_each_mistake_has_its_own_hint():
    for mistakes in (ex.Q1_MISTAKES, ex.Q2_MISTAKES, ex.Q3_MISTAKES):
        hints = [m.hint for m in mistakes]
        assert len(set(hints)) == len(hints)


def _not_implemented(*args):
    raise NotImplementedError


@pytest.mark.parametrize("exercise", [ex.q1, ex.q2, ex.q3])
@pytest.mark.parametrize("placeholder", [..., None, _not_implemented])
def test_placeholders_are_not_done(exercise, placeholder):
    fb = exercise.evaluate(placeholder)
    assert fb.status == "not_done" and "not done yet" in fb.message


def test_a_preprocessor_left_undone_is_not_done():
    def prep_unfinished(train, numeric, categorical):
        def transform(rows):
            raise NotImplementedError

        return transform

    assert ex.q2.evaluate(prep_unfinished).status == "not_done"


def test_a_learners_error_names_their_line_not_the_course():
    def buggy(frame, label, seed):
        return frame.groupby(labels)  # noqa: F821

    fb = ex.q1.evaluate(buggy)
    assert fb.status == "error" and "NameError" in fb.message and "labels" in fb.message
    assert "utils/checks" not in str(fb) and "Traceback" not in str(fb)


def test_the_report_waits_for_the_answers():
    assert ex.report(split_by_class, _not_implemented, score).status == "not_done"
