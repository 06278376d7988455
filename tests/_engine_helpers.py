"""Builders of tiny networks shared by the engine tests."""

import numpy as np

from skdfa._layers import DenseLayer
from skdfa._network import Network, Workspace
from skdfa.rules import FeedbackSampler


def tiny_network(rule, activation="tanh", output="softmax", units=(3, 4, 5, 2), seed=0):
    """A float64 network with random weights and feedback."""
    layers = [DenseLayer(a, b) for a, b in zip(units[:-1], units[1:])]
    net = Network(layers, activation, output, rule)
    feedback = FeedbackSampler(np.random.RandomState(seed + 1), "gaussian", 1.0, np.float64)
    net.initialize(np.random.RandomState(seed), "glorot", np.float64, lambda rng: feedback)
    # Larger weights make the hidden layers non-trivial (the sign rules'
    # feedback keeps the signs).
    for layer in net.layers:
        for p in layer.params:
            p *= 2
    return net


def tiny_batch(net, n=6, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((n, net.units[0]))
    if net.output == "identity":
        Y = rng.standard_normal((n, net.units[-1]))
    elif net.output == "softmax":
        Y = np.eye(net.units[-1])[rng.randint(net.units[-1], size=n)]
    else:
        Y = (rng.rand(n, net.units[-1]) > 0.5).astype(float)
    return X, Y


def workspace(net, n):
    return Workspace(net, n, (0.0, 0.0), np.random.default_rng(0))
