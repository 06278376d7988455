"""skdfa's LeNet updates against biotorch's own layers, from the same weights.

For FA, uSF and frSF, one SGD step of biotorch's ``LeNetMNIST`` (6, 16 and
120 kernels of 5x5, 2x2 max pooling, dense 84, 10 outputs, ReLU) is taken
twice from the same weights, biases and feedback kernels, on one batch of
32x32 images: by :class:`skdfa.ConvDFAClassifier`, and by biotorch's
``biotorch.layers.<rule>.Conv2d`` and ``Linear`` driven by torch autograd, as
biotorch trains them. The script prints each layer's largest difference
between the two weight gradients, relative to the largest gradient entry, and
exits 1 if one is above 1e-10 (float64 throughout).

brSF and DFA are not compared here: biotorch's brSF draws new magnitudes
from torch's global generator in every forward pass, and its DFA sends the
error through the network by hooks rather than layers alone; skdfa's tests
check both against the formulas of biotorch's code.

Needs torch and biotorch (``pip install --no-deps biotorch==0.0.16``; its
layers import without torchvision)::

    python benchmarks/compare_biotorch.py                  # random images
    python benchmarks/compare_biotorch.py --data fashion-mnist
"""

import argparse
import importlib
import sys
import warnings

import numpy as np

from skdfa import ConvDFAClassifier

RULES = ("fa", "usf", "frsf")
TOLERANCE = 1e-10


def images(data, n_samples):
    """``n_samples`` 32x32 images as biotorch feeds them, and their labels."""
    if data == "synthetic":
        rng = np.random.RandomState(0)
        return rng.normal(size=(n_samples, 1024)), np.arange(n_samples) % 10
    from skdfa._cli import _biotorch, _common

    loaded = _common.load_data(data, seed=0)
    X_train, _, y_train, _ = loaded.arrays
    return (_biotorch.prepare(X_train[:n_samples], loaded.name).astype(np.float64),
            y_train[:n_samples])


def skdfa_step(rule, X, y):
    """skdfa's weights before one step, its feedback, and the step (lr 1)."""
    clf = ConvDFAClassifier(
        rule=rule, solver="sgd", momentum=0.0, learning_rate_init=1.0, alpha=0.0,
        batch_size=len(X), shuffle=False, max_iter=1, warm_start=True, random_state=0,
        weight_init="glorot_zero_bias", feedback_scale="glorot",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one epoch does not converge
        clf.fit(X, y)  # a first step, so that the compared one starts anywhere
        coefs = [c.copy() for c in clf.coefs_]
        intercepts = [b.copy() for b in clf.intercepts_]
        feedback = [B.copy() for B in clf.feedback_]
        clf.fit(X, y)
    steps = [old - new for old, new in zip(coefs, clf.coefs_, strict=True)]
    return coefs, intercepts, feedback, steps


def biotorch_gradients(rule, X, y, coefs, intercepts, feedback):
    """biotorch's weight gradients of the mean cross-entropy, skdfa's layout."""
    import torch
    import torch.nn.functional as F

    layers = importlib.import_module(f"biotorch.layers.{rule}")
    convs = [layers.Conv2d(1, 6, 5), layers.Conv2d(6, 16, 5), layers.Conv2d(16, 120, 5)]
    dense = [layers.Linear(120, 84), layers.Linear(84, 10)]
    modules = convs + dense
    with torch.no_grad():
        for i, module in enumerate(modules):
            # skdfa's dense matrices are (n_in, n_out), torch's (n_out, n_in).
            module.weight.copy_(torch.tensor(coefs[i] if i < len(convs) else coefs[i].T))
            module.bias.copy_(torch.tensor(intercepts[i]))
        # feedback_[i] carries the signal back through coefs_[i + 1]; its
        # matrices are (n_out, n_in), as biotorch's backward weights.
        for module, B in zip(modules[1:], feedback, strict=True):
            B = torch.tensor(B)
            if rule == "frsf":
                B = B.abs()  # biotorch keeps magnitudes, and takes W's sign each pass
            if rule != "usf":  # uSF's feedback is sign(W), scaled, each pass
                module.weight_backward.copy_(B)
    h = torch.tensor(X).reshape(-1, 1, 32, 32)
    for conv, pool in zip(convs, (2, 2, 1), strict=True):
        h = torch.relu(conv(h))
        h = F.max_pool2d(h, pool) if pool > 1 else h
    h = torch.relu(dense[0](h.flatten(1)))
    F.cross_entropy(dense[1](h), torch.tensor(y)).backward()
    return [m.weight.grad.numpy() if i < len(convs) else m.weight.grad.numpy().T
            for i, m in enumerate(modules)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic",
                        help="synthetic, fashion-mnist, mnist or a folder of IDX files "
                             "(default: %(default)s)")
    parser.add_argument("--n-samples", type=int, default=64)
    parser.add_argument("--rules", default=",".join(RULES))
    args = parser.parse_args(argv)
    try:
        import torch

        importlib.import_module("biotorch.layers.fa")
    except ImportError as exc:
        print(f"needs torch and biotorch ({exc}); pip install --no-deps biotorch==0.0.16")
        return 2
    torch.set_default_dtype(torch.float64)
    X, y = images(args.data, args.n_samples)
    print(f"LeNet, one SGD step on {args.n_samples} {args.data} images, float64")
    print(f"{'rule':<6}{'layer':<8}{'max |skdfa - biotorch| / max |biotorch|':>42}")
    worst = 0.0
    names = ("conv1", "conv2", "conv3", "fc1", "out")
    for rule in args.rules.split(","):
        coefs, intercepts, feedback, steps = skdfa_step(rule, X, y)
        expected = biotorch_gradients(rule, X, y, coefs, intercepts, feedback)
        for name, got, grad in zip(names, steps, expected, strict=True):
            difference = np.abs(got - grad).max() / np.abs(grad).max()
            worst = max(worst, difference)
            print(f"{rule:<6}{name:<8}{difference:>42.1e}")
    print(f"largest: {worst:.1e} ({'agree' if worst <= TOLERANCE else 'DIFFER'}, "
          f"tolerance {TOLERANCE:.0e})")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
