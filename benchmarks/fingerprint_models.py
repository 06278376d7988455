"""Fingerprints of fitted numpy models, to check that a refactoring of the
engine changes no fitted model bit for bit.

Fits, on fixed seeds and a slice of ``load_digits``, every learning rule with
``DFAClassifier`` (dense) and ``RDClassifier`` under sgd, adam and rmsprop,
plus dropout, early-stopping, alpha=0, sample-weight, warm-start and
alignment-tracking variants, ``DFARegressor``, ``StackingDFA``, and
``ConvDFAClassifier`` (every rule, with and without pooling, every
``conv_feedback`` form of the direct rules, on 8x8 digits), and saves
every fitted array (``coefs_``/``diagonals_``, ``intercepts_``,
``loss_curve_``, ``feedback_``, validation scores, alignment records) to an
``.npz`` file.

Usage::

    python benchmarks/fingerprint_models.py save /work/runs/fingerprint_before.npz
    python benchmarks/fingerprint_models.py compare /work/runs/fingerprint_before.npz

``--only TEXT`` fits only the models whose key contains ``TEXT``.

``compare`` fits again and prints every key whose arrays differ (with the
largest absolute difference), every key missing on either side, and exits
with status 1 if any differ.
"""

import argparse
import sys
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skdfa import ConvDFAClassifier, DFAClassifier, DFARegressor, RDClassifier, StackingDFA
from skdfa.rules import RULES as _RULE_OBJECTS

RULES = ["bp", "fa", "dfa", "drtp", "sdfa", "usf", "frsf", "brsf", "kp", "dkp"]
RD_RULES = ["bp", "fa", "dfa", "drtp", "sdfa", "dkp"]
SOLVERS = ["sgd", "adam", "rmsprop"]


def _data():
    X, y = load_digits(return_X_y=True)
    return X[:300] / 16, y[:300]


def _arrays(prefix, model):
    """Every fitted array of ``model``, keyed ``prefix/name``."""
    out = {}
    names = ["coefs_", "intercepts_", "feedback_", "loss_curve_", "validation_scores_",
             "alignment_", "weight_alignment_", "alignment_steps_"]
    for name in names:
        value = getattr(model, name, None)
        if value is None:
            continue
        if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
            for i, a in enumerate(value):
                out[f"{prefix}/{name}[{i}]"] = np.asarray(a)
        else:
            out[f"{prefix}/{name}"] = np.asarray(value, dtype=np.float64)
    for i, pair in enumerate(getattr(model, "diagonals_", [])):
        for j, a in enumerate(pair):
            out[f"{prefix}/diagonals_[{i}][{j}]"] = np.asarray(a)
    if getattr(model, "output_coef_", None) is not None:
        out[f"{prefix}/output_coef_"] = np.asarray(model.output_coef_)
    return out


def _models():
    """``(key, unfitted estimator, fit kwargs)`` for every fingerprinted model."""
    common = dict(hidden_layer_sizes=(16, 12), max_iter=4, batch_size=64, random_state=0,
                  learning_rate_init=0.01)
    for rule in RULES:
        for solver in SOLVERS:
            yield f"dense/{rule}/{solver}", DFAClassifier(rule=rule, solver=solver, **common), {}
        yield (f"dense/{rule}/dropout", DFAClassifier(rule=rule, dropout=(0.1, 0.2), **common), {})
        yield (f"dense/{rule}/early", DFAClassifier(
            rule=rule, early_stopping=True, **{**common, "max_iter": 6}), {})
        yield f"dense/{rule}/noalpha", DFAClassifier(rule=rule, alpha=0.0, **common), {}
        yield (f"dense/{rule}/track", DFAClassifier(rule=rule, track_alignment=3, **common), {})
        yield (f"dense/{rule}/weighted", DFAClassifier(rule=rule, **common),
               {"sample_weight": np.linspace(0.5, 2.0, 300)})
    for rule in RD_RULES:
        for solver in SOLVERS:
            yield f"rd/{rule}/{solver}", RDClassifier(rule=rule, solver=solver, **common), {}
        yield f"rd/{rule}/dropout", RDClassifier(rule=rule, dropout=0.2, **common), {}
        yield (f"rd/{rule}/early", RDClassifier(
            rule=rule, early_stopping=True, **{**common, "max_iter": 6}), {})
        yield (f"rd/{rule}/dct-dense", RDClassifier(
            rule=rule, rd_matrix="dct", output_layer="dense", **common), {})
    for rule in ["dfa", "bp", "kp", "brsf"]:
        yield f"regressor/{rule}", DFARegressor(rule=rule, **common), {}
    yield "float32/dfa", DFAClassifier(**common), {"float32": True}
    conv = dict(hidden_layer_sizes=(12,), max_iter=3, batch_size=64, random_state=0,
                learning_rate_init=0.01)
    pooled = dict(conv_layers=((4, 3), (6, 3)), pool_size=(2, 1), **conv)
    flat = dict(conv_layers=((4, 3),), pool_size=1, **conv)
    for rule in RULES:
        forms = ["map", "kernel"] if "conv_feedback" in _param_names(rule) else [None]
        if rule == "dkp":
            forms = ["map"]
        for form in forms:
            value = rule if form is None else type(_RULE_OBJECTS[rule])(conv_feedback=form)
            suffix = "" if form is None else f"/{form}"
            yield (f"conv/{rule}{suffix}/pooled", ConvDFAClassifier(rule=value, **pooled), {})
            yield (f"conv/{rule}{suffix}/flat", ConvDFAClassifier(rule=value, **flat), {})
        yield (f"conv/{rule}/track", ConvDFAClassifier(rule=rule, track_alignment=2, **pooled), {})


def _param_names(rule):
    import inspect
    init = type(_RULE_OBJECTS[rule]).__init__
    return [] if init is object.__init__ else list(inspect.signature(init).parameters)


def fingerprints(only=""):
    X, y = _data()
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for key, model, kwargs in _models():
            if only not in key:
                continue
            kwargs = dict(kwargs)
            Xk = X.astype(np.float32) if kwargs.pop("float32", False) else X
            target = y.astype(float) / 9 if key.startswith("regressor") else y
            model.fit(Xk, target, **kwargs)
            out.update(_arrays(key, model))
        if only:
            return out
        # warm start and partial_fit, with a rule change under warm start
        warm = DFAClassifier((16,), max_iter=2, warm_start=True, random_state=0)
        for rule in ["dfa", "kp", "frsf", "dkp"]:
            warm.set_params(rule=rule).fit(X, y)
            out.update(_arrays(f"warm/{rule}", warm))
        part = DFAClassifier((16,), rule="brsf", random_state=0)
        for _ in range(3):
            part.partial_fit(X, y, classes=np.arange(10))
        out.update(_arrays("partial/brsf", part))
        stack = StackingDFA(
            DFAClassifier((16,), max_iter=3, learning_rate_init=0.01), n_estimators=3,
            random_state=0,
        ).fit(X, y)
        for i, learner in enumerate(stack.estimators_):
            out.update(_arrays(f"stacking/learner{i}", learner))
        out.update(_arrays("stacking/head", stack.final_estimator_))
    return out


def compare(path, only=""):
    before = {key: a for key, a in np.load(path).items() if only in key}
    after = fingerprints(only)
    differ = 0
    for key in sorted(set(before) | set(after)):
        if key not in after or key not in before:
            print(f"{key}: only {'before' if key in before else 'after'}")
            differ += 1
            continue
        a, b = before[key], after[key]
        if a.shape != b.shape or a.dtype != b.dtype:
            print(f"{key}: {a.shape} {a.dtype} before, {b.shape} {b.dtype} after")
            differ += 1
        elif a.tobytes() != b.tobytes():
            gap = np.nanmax(np.abs(a.astype(np.float64) - b.astype(np.float64)))
            print(f"{key}: differs, max |diff| = {gap:.3g}")
            differ += 1
    print(f"{len(after)} arrays compared, {differ} differ")
    return differ


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["save", "compare"])
    parser.add_argument("path")
    parser.add_argument("--only", default="", help="fit only the models whose key contains it")
    args = parser.parse_args(argv)
    if args.action == "save":
        arrays = fingerprints(args.only)
        np.savez(args.path, **arrays)
        print(f"{len(arrays)} arrays saved to {args.path}")
        return 0
    return 1 if compare(args.path, args.only) else 0


if __name__ == "__main__":
    sys.exit(main())
