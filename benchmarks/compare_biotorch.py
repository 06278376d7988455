"""skdfa's LeNet updates against biotorch's own model and layers, from the same weights.

For FA, uSF and frSF (and DFA on request), one SGD step of biotorch's LeNet is
taken twice from the same weights, biases and feedback, on one batch of 32x32
images: by :class:`skdfa.ConvDFAClassifier`, and by biotorch 0.0.16 itself:
its ``LeNetMNIST`` or ``LeNetCIFAR`` (``biotorch/models/le_net.py``)
converted by its ``BioModule`` to the rule's layers (``biotorch.layers.<rule>``)
and driven by torch autograd, as biotorch trains them. The script prints each
layer's largest difference between the two weight gradients, relative to the
largest gradient entry, and exits 1 if one is above 1e-10 (float64
throughout).

- ``--net lenet-mnist`` (the default): 1x32x32 images; 6, 16 and 120 kernels
  of 5x5, 2x2 max pooling after the first two, dense 84, 10 outputs, ReLU.
- ``--net lenet-cifar``: 3x32x32 images; 32, 64 and 128 kernels of 3x3, 2x2
  max pooling after the first two, global average pooling (biotorch's
  ``F.avg_pool2d(out, out.size()[3])``), dense 256, 10 outputs, ReLU.

``--rules dfa`` compares skdfa's ``conv_feedback="kernel"`` DFA with
biotorch's hook-based DFA (its ``BioModule`` broadcasts the loss gradient to
every layer, whose backward hook replaces its input gradient). brSF is not
compared: biotorch's brSF draws new magnitudes from torch's global
generator in every forward pass; skdfa's tests check it against the
formulas of biotorch's code.

Needs torch and biotorch (``pip install --no-deps biotorch==0.0.16``; its
layers and ``BioModule`` import without torchvision; the model file is read
on its own, since ``biotorch.models`` imports torchvision)::

    python benchmarks/compare_biotorch.py                  # random images
    python benchmarks/compare_biotorch.py --data fashion-mnist
    python benchmarks/compare_biotorch.py --net lenet-cifar --rules fa,usf,frsf,dfa
"""

import argparse
import importlib
import sys
import warnings

import numpy as np

from skdfa import ConvDFAClassifier

RULES = ("fa", "usf", "frsf")
TOLERANCE = 1e-10

# skdfa's parameters for each of biotorch's LeNets, its torch class, and the
# names of the layers with weights.
NETS = {
    "lenet-mnist": (dict(input_shape=(1, 32, 32)), "LeNetMNIST",
                    ("conv1", "conv2", "conv3", "fc1", "fc2")),
    "lenet-cifar": (dict(conv_layers=((32, 3), (64, 3), (128, 3)), global_pool=True,
                         hidden_layer_sizes=(256,), input_shape=(3, 32, 32)), "LeNetCIFAR",
                    ("conv1", "conv2", "conv3", "fc1", "fc2")),
}


def images(data, n_samples, channels):
    """``n_samples`` 32x32 images as biotorch feeds them, and their labels."""
    if data == "synthetic":
        rng = np.random.RandomState(0)
        return rng.normal(size=(n_samples, channels * 1024)), np.arange(n_samples) % 10
    from skdfa._cli import _biotorch, _common

    loaded = _common.load_data(data, seed=0)
    X_train, _, y_train, _ = loaded.arrays
    return (_biotorch.prepare(X_train[:n_samples], loaded.name).astype(np.float64),
            y_train[:n_samples])


def _skdfa_rule(rule):
    if rule == "dfa":  # biotorch's form
        from skdfa.rules import DirectFeedbackAlignment

        return DirectFeedbackAlignment(conv_feedback="kernel")
    return rule


def skdfa_step(rule, net, X, y):
    """skdfa's weights before one step, its feedback, and the step (lr 1)."""
    clf = ConvDFAClassifier(
        **NETS[net][0], rule=_skdfa_rule(rule), solver="sgd", momentum=0.0,
        learning_rate_init=1.0, alpha=0.0, batch_size=len(X), shuffle=False, max_iter=1,
        warm_start=True, random_state=0, weight_init="glorot_zero_bias",
        feedback_scale="glorot",
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


def biotorch_model(rule, net, options=None):
    """biotorch's own LeNet, converted to ``rule`` by its ``BioModule``;
    ``options``: its layers' (``layer_config["options"]``), or biotorch's
    defaults."""
    import contextlib
    import importlib.util
    import io
    from pathlib import Path

    import biotorch
    from biotorch.module.biomodule import BioModule

    path = Path(biotorch.__file__).parent / "models" / "le_net.py"
    spec = importlib.util.spec_from_file_location("biotorch_le_net", path)
    le_net = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(le_net)
    with contextlib.redirect_stdout(io.StringIO()):  # the converter's report
        return BioModule(getattr(le_net, NETS[net][1])(), mode=rule, copy_weights=False,
                         layer_config=None if options is None else {"type": rule,
                                                                    "options": options},
                         output_dim=10)


def biotorch_gradients(rule, net, X, y, coefs, intercepts, feedback):
    """biotorch's weight gradients of the mean cross-entropy, skdfa's layout."""
    import torch
    import torch.nn.functional as F

    model = biotorch_model(rule, net)
    modules = [getattr(model.module, name) for name in NETS[net][2]]
    n_convs = sum(c.ndim == 4 for c in coefs)
    with torch.no_grad():
        for i, module in enumerate(modules):
            # skdfa's dense matrices are (n_in, n_out), torch's (n_out, n_in).
            module.weight.copy_(torch.tensor(coefs[i] if i < n_convs else coefs[i].T))
            module.bias.copy_(torch.tensor(intercepts[i]))
        # feedback_[i] carries the signal back through coefs_[i + 1] (the
        # layer-by-layer rules) or lands on its input (DFA's kernel form);
        # its matrices are (n_out, n_in), as biotorch's backward weights.
        for module, B in zip(modules[1:], feedback, strict=True):
            B = torch.tensor(B)
            if rule == "frsf":
                B = B.abs()  # biotorch keeps magnitudes, and takes W's sign each pass
            if rule != "usf":  # uSF's feedback is sign(W), scaled, each pass
                module.weight_backward.copy_(B)
    shape = (-1, *NETS[net][0]["input_shape"])
    inputs, targets = torch.tensor(X).reshape(shape), torch.tensor(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DFA's module backward hooks are deprecated
        if rule == "dfa":
            logits = model(inputs, targets, F.cross_entropy)
        else:
            logits = model(inputs)
        F.cross_entropy(logits, targets).backward()
    return [m.weight.grad.numpy() if i < n_convs else m.weight.grad.numpy().T
            for i, m in enumerate(modules)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic",
                        help="synthetic, fashion-mnist, mnist or a folder of IDX files "
                             "(default: %(default)s)")
    parser.add_argument("--n-samples", type=int, default=64)
    parser.add_argument("--net", choices=sorted(NETS), default="lenet-mnist")
    parser.add_argument("--rules", default=",".join(RULES),
                        help="among fa, usf, frsf and dfa (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        import torch

        importlib.import_module("biotorch.module.biomodule")
    except ImportError as exc:
        print(f"needs torch and biotorch ({exc}); pip install --no-deps biotorch==0.0.16")
        return 2
    torch.set_default_dtype(torch.float64)
    channels = NETS[args.net][0]["input_shape"][0]
    if args.data != "synthetic" and channels != 1:
        parser.error(f"--net {args.net} runs on random images (--data synthetic) only")
    X, y = images(args.data, args.n_samples, channels)
    print(f"{args.net}, one SGD step on {args.n_samples} {args.data} images, float64")
    print(f"{'rule':<6}{'layer':<8}{'max |skdfa - biotorch| / max |biotorch|':>42}")
    worst = 0.0
    for rule in args.rules.split(","):
        coefs, intercepts, feedback, steps = skdfa_step(rule, args.net, X, y)
        expected = biotorch_gradients(rule, args.net, X, y, coefs, intercepts, feedback)
        for name, got, grad in zip(NETS[args.net][2], steps, expected, strict=True):
            difference = np.abs(got - grad).max() / np.abs(grad).max()
            worst = max(worst, difference)
            print(f"{rule:<6}{name:<8}{difference:>42.1e}")
    print(f"largest: {worst:.1e} ({'agree' if worst <= TOLERANCE else 'DIFFER'}, "
          f"tolerance {TOLERANCE:.0e})")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
