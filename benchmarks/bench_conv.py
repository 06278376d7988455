"""Speed benchmark: LeNet trained by DFA, seconds per epoch, in one run.

Three implementations of one LeNet epoch (biotorch's ``LeNetMNIST`` on 32x32
images, batch 64, SGD with momentum 0.9, weight decay 1e-3), interleaved:

- ``skdfa-torch``: :class:`skdfa.ConvDFAClassifier` on torch tensors;
- ``skdfa-numpy``: the same on numpy arrays;
- ``biotorch``: biotorch's own DFA layers (``biotorch.layers.dfa``, installed
  with ``pip install --no-deps biotorch==0.0.16``), driven as its
  ``BioModule`` does (autograd with backward hooks); skipped if absent;
- ``torch-loop``: a plain PyTorch DFA loop written here: forward with
  ``torch.nn.functional``, each hidden layer's delta ``(e @ B_l) * f'(a_l)``,
  gradients by ``torch.nn.grad``, ``torch.optim.SGD``; no autograd.

The DFA forms differ (biotorch sends the error through kernel-shaped
matrices into the layer below; skdfa and the loop project it onto each
layer's output maps), but every implementation does one forward pass, one
projection per hidden layer and the same weight gradients. Examples::

    python benchmarks/bench_conv.py --n-samples 6000 --repeats 3
    python benchmarks/bench_conv.py --data synthetic --n-samples 256 --repeats 1
"""

import argparse
import time
import warnings

import numpy as np

LENET = dict(conv_layers=((6, 5), (16, 5), (120, 5)), pool_size=2, hidden_layer_sizes=(84,))
BATCH = 64


def load(data, n_samples, seed=0):
    """(n_samples, 1024) float32 images of 32x32 and labels."""
    if data == "synthetic":
        rng = np.random.RandomState(seed)
        return rng.rand(n_samples, 1024).astype(np.float32), rng.randint(10, size=n_samples)
    from skdfa.datasets import load_fashion_mnist

    X, y = load_fashion_mnist(subset="train", return_X_y=True)
    X = np.pad(X[:n_samples].reshape(-1, 28, 28), ((0, 0), (2, 2), (2, 2)))
    return X.reshape(len(X), -1), y[:n_samples]


def skdfa_epoch(namespace):
    """A function that trains one epoch of skdfa on (X, y); the model persists."""
    import sklearn

    from skdfa import ConvDFAClassifier

    clf = ConvDFAClassifier(
        **LENET, rule="dfa", solver="sgd", momentum=0.9, nesterovs_momentum=False,
        learning_rate_init=1e-3, alpha=1e-3 * BATCH, batch_size=BATCH, random_state=0,
    )

    def epoch(X, y):
        if namespace == "torch":
            import torch

            with sklearn.config_context(array_api_dispatch=True):
                clf.partial_fit(torch.from_numpy(X), torch.from_numpy(y), classes=np.arange(10))
        else:
            clf.partial_fit(X, y, classes=np.arange(10))

    return epoch


def biotorch_epoch():
    """biotorch's DFA LeNet, trained as ``biotorch.training.functions.train`` does."""
    import torch
    from biotorch.layers.dfa import Conv2d, Linear

    torch.manual_seed(0)
    config = {"type": "dfa", "options": {"init": "xavier", "constrain_weights": False,
                                         "gradient_clip": False}}
    conv = [Conv2d(1, 6, 10, 5, layer_config=dict(config)),
            Conv2d(6, 16, 10, 5, layer_config=dict(config)),
            Conv2d(16, 120, 10, 5, layer_config=dict(config))]
    fc = [Linear(120, 84, 10, layer_config=dict(config)),
          Linear(84, 10, 10, layer_config=dict(config))]
    layers = torch.nn.ModuleList(conv + fc)
    pool = torch.nn.functional.max_pool2d
    relu = torch.relu

    def forward(x):
        out = pool(relu(conv[0](x)), 2)
        out = pool(relu(conv[1](out)), 2)
        out = relu(conv[2](out)).flatten(1)
        return fc[1](relu(fc[0](out)))

    optimizer = torch.optim.SGD(layers.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def epoch(X, y):
        X = torch.from_numpy(X).reshape(-1, 1, 32, 32)
        y = torch.from_numpy(y)
        for start in range(0, len(X), BATCH):
            inputs, targets = X[start:start + BATCH], y[start:start + BATCH]
            outputs = forward(inputs)
            loss = loss_fn(outputs, targets)
            # BioModule.forward: the loss gradient goes to every layer's hook.
            loss_gradient = torch.autograd.grad(loss, outputs, retain_graph=True)[0]
            for layer in layers:
                layer.loss_gradient = loss_gradient
            layers.zero_grad()
            loss.backward()
            optimizer.step()

    return epoch


def torch_loop_epoch():
    """DFA on LeNet in plain PyTorch, without autograd."""
    import torch
    import torch.nn.functional as F
    from torch.nn.grad import conv2d_input, conv2d_weight  # noqa: F401 (documented)

    torch.manual_seed(0)
    grad_off = torch.no_grad()
    shapes = [(6, 1, 5, 5), (16, 6, 5, 5), (120, 16, 5, 5)]
    kernels = [torch.nn.init.xavier_uniform_(torch.empty(s)) for s in shapes]
    weights = [torch.nn.init.xavier_uniform_(torch.empty(84, 120)),
               torch.nn.init.xavier_uniform_(torch.empty(10, 84))]
    params = [*kernels, *weights] + [torch.zeros(s[0]) for s in shapes] + [
        torch.zeros(84), torch.zeros(10)]
    # One (10, sum of hidden output sizes) feedback matrix, as skdfa's.
    widths = [6 * 28 * 28, 16 * 10 * 10, 120, 84]
    feedback = torch.empty(10, sum(widths)).uniform_(-1, 1) / np.sqrt(max(widths))
    optimizer = torch.optim.SGD(params, lr=1e-3, momentum=0.9, weight_decay=1e-3)

    def epoch(X, y):
        X = torch.from_numpy(X).reshape(-1, 1, 32, 32)
        Y = F.one_hot(torch.from_numpy(y), 10).to(X.dtype)
        k1, k2, k3, w1, w2, b1, b2, b3, c1, c2 = params
        with grad_off:
            for start in range(0, len(X), BATCH):
                x, t = X[start:start + BATCH], Y[start:start + BATCH]
                n = len(x)
                h1 = torch.relu(F.conv2d(x, k1, b1))
                p1 = F.max_pool2d(h1, 2)
                h2 = torch.relu(F.conv2d(p1, k2, b2))
                p2 = F.max_pool2d(h2, 2)
                h3 = torch.relu(F.conv2d(p2, k3, b3)).flatten(1)
                h4 = torch.relu(F.linear(h3, w1, c1))
                out = F.linear(h4, w2, c2)
                e = (torch.softmax(out, 1) - t) / n
                projected = e @ feedback
                d1, d2, d3, d4 = projected.split(widths, 1)
                d1 = d1.reshape(h1.shape) * (h1 > 0)
                d2 = d2.reshape(h2.shape) * (h2 > 0)
                d3 = d3 * (h3 > 0)
                d4 = d4 * (h4 > 0)
                d3 = d3.reshape(-1, 120, 1, 1)
                k1.grad = conv2d_weight(x, k1.shape, d1)
                k2.grad = conv2d_weight(p1, k2.shape, d2)
                k3.grad = conv2d_weight(p2, k3.shape, d3)
                w1.grad, w2.grad = d4.T @ h3, e.T @ h4
                b1.grad, b2.grad, b3.grad = d1.sum((0, 2, 3)), d2.sum((0, 2, 3)), d3.sum((0, 2, 3))
                c1.grad, c2.grad = d4.sum(0), e.sum(0)
                optimizer.step()

    return epoch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=["fashion-mnist", "synthetic"], default="fashion-mnist")
    parser.add_argument("--n-samples", type=int, default=6000)
    parser.add_argument("--repeats", type=int, default=3,
                        help="epochs per implementation, interleaved (the median is shown)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    X, y = load(args.data, args.n_samples)
    runners = {"skdfa-torch": skdfa_epoch("torch"), "skdfa-numpy": skdfa_epoch("numpy"),
               "torch-loop": torch_loop_epoch()}
    try:
        runners["biotorch"] = biotorch_epoch()
    except ImportError as exc:
        print(f"biotorch skipped ({exc}); pip install --no-deps biotorch==0.0.16")
    times = {name: [] for name in runners}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, run in runners.items():  # a first epoch each: imports, allocation
            run(X[:BATCH * 2], y[:BATCH * 2])
        for _ in range(args.repeats):
            for name, run in runners.items():
                start = time.perf_counter()
                run(X, y)
                times[name].append(time.perf_counter() - start)
    medians = {name: float(np.median(t)) for name, t in times.items()}
    peers = [medians[n] for n in ("biotorch", "torch-loop") if n in medians]
    fastest_peer = min(peers)
    print(f"LeNet, DFA, {args.data}, {len(X)} samples, batch {BATCH}, "
          f"torch threads {torch.get_num_threads()}, median of {args.repeats} epochs")
    print(f"{'implementation':<14} {'s/epoch':>9} {'vs fastest peer':>16}")
    for name, seconds in medians.items():
        print(f"{name:<14} {seconds:>9.3f} {seconds / fastest_peer:>15.2f}x")
    print(f"skdfa numpy / skdfa torch: {medians['skdfa-numpy'] / medians['skdfa-torch']:.2f}x")


if __name__ == "__main__":
    main()
