"""The bench's reference learners, next to which skdfa's are timed.

- scikit-learn's ``MLPClassifier``: the learner ``"mlp"`` of
  :func:`~skdfa._cli._bench_measure.bench_learner`, trained by the same
  ``partial_fit`` epochs as skdfa's estimators.
- A plain PyTorch DFA loop (:func:`torch_dfa_loop`), written the way DFA
  research code writes it: the peer of skdfa on torch.
"""

import time

import numpy as np
from sklearn.utils import gen_batches

from . import _common
from ._bench_measure import BATCH_SIZE, BenchResult, record_epoch


def torch_dfa_loop(hidden, data, epochs, seed=0, device="cpu"):
    """The reference peer: DFA in plain PyTorch, as DFA research code writes it.

    ``torch.no_grad()`` forward pass, the output error projected to each
    hidden layer by ``e @ B_l``, ``torch.mm`` into each ``.grad``, then
    ``torch.optim.Adam(fused=True)`` (the L2 penalty as the weights' decay).
    Same network, initialisation scheme, batch size and epochs as skdfa's
    row; only the loop is PyTorch's.

    Parameters
    ----------
    hidden, data, epochs, seed
        As :func:`~skdfa._cli._bench_measure.bench_learner`.
    device : str, default="cpu"
        The torch device.

    Yields
    ------
    As :func:`~skdfa._cli._bench_measure.bench_learner`.
    """
    import torch

    X_train, X_test, y_train, y_test = data
    classes, labels = np.unique(y_train, return_inverse=True)
    units = [X_train.shape[1], *hidden, len(classes)]
    result = BenchResult("torch-loop", units, device=device)
    yield result
    rng = np.random.RandomState(seed)
    weights, biases = [], []
    for n_in, n_out in zip(units[:-1], units[1:]):
        bound = np.sqrt(6.0 / (n_in + n_out))
        for shape, group in (((n_in, n_out), weights), ((n_out,), biases)):
            init = rng.uniform(-bound, bound, shape).astype(np.float32)
            group.append(torch.nn.Parameter(torch.asarray(init, device=device)))
    feedback = [
        torch.asarray(
            (rng.uniform(-1, 1, (units[-1], width)) / np.sqrt(width)).astype(np.float32),
            device=device,
        )
        for width in hidden
    ]
    for p in weights + biases:
        p.grad = torch.empty_like(p)
    optimizer = torch.optim.Adam(
        [{"params": weights, "weight_decay": 1e-4 / BATCH_SIZE},
         {"params": biases, "weight_decay": 0.0}],
        lr=1e-3, fused=True,
    )
    X = torch.asarray(X_train, device=device)
    Y = torch.nn.functional.one_hot(
        torch.asarray(labels, device=device), len(classes)
    ).to(torch.float32)
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        start = time.perf_counter()
        with torch.no_grad():
            order = torch.randperm(X.shape[0], generator=generator).to(device)
            for batch in gen_batches(X.shape[0], BATCH_SIZE):
                index = order[batch]
                x, y = X[index], Y[index]
                activations = [x]
                for W, b in zip(weights[:-1], biases[:-1]):
                    activations.append(torch.tanh(torch.addmm(b, activations[-1], W)))
                output = torch.addmm(biases[-1], activations[-1], weights[-1])
                error = (torch.softmax(output, dim=1) - y) / x.shape[0]
                for l, B in enumerate(feedback):
                    delta = (error @ B) * (1 - activations[l + 1] ** 2)
                    torch.mm(activations[l].T, delta, out=weights[l].grad)
                    torch.sum(delta, 0, out=biases[l].grad)
                torch.mm(activations[-1].T, error, out=weights[-1].grad)
                torch.sum(error, 0, out=biases[-1].grad)
                optimizer.step()
        _common.synchronize(device)
        yield record_epoch(result, epoch, epochs, time.perf_counter() - start)
    with torch.no_grad():
        hidden_out = torch.asarray(X_test, device=device)
        for W, b in zip(weights[:-1], biases[:-1]):
            hidden_out = torch.tanh(torch.addmm(b, hidden_out, W))
        scores = torch.addmm(biases[-1], hidden_out, weights[-1])
    predicted = classes[scores.argmax(dim=1).cpu().numpy()]
    result.accuracy = float(np.mean(predicted == y_test))
