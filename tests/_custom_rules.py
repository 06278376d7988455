"""Learning rules defined outside skdfa, as a user would write them."""

import numpy as np

from skdfa.rules import LearningRule, RuleState


class SparseDFA(LearningRule):
    """DFA with sparse feedback (Crafton et al., 2019): each hidden layer gets
    ``e @ B_l`` with only a fraction ``density`` of ``B_l``'s entries nonzero."""

    name = "sparse_dfa"
    label = "sparse DFA"
    color = "#00aa88"
    random_feedback = True

    def __init__(self, density=0.25):
        self.density = density

    def init_state(self, layers, sample):
        # DFA's matrices, drawn as DFA draws them, then thinned.
        n_outputs = layers[-1].n_out
        feedback = [sample((n_outputs, layer.n_out), layer.n_out) for layer in layers[:-1]]
        for B in feedback:
            B[sample.rng.uniform(size=B.shape) >= self.density] = 0
        return RuleState(fixed=feedback)

    def hidden_deltas(self, ctx, state):
        deltas = []
        for l, (layer, B) in enumerate(zip(ctx.layers[:-1], state.fixed)):
            projected = ctx.ops.matmul(ctx.error, B, out=ctx.buffer(("sparse", l), B.shape[1]))
            deltas.append(ctx.derivative(l, layer.as_output(projected)))
        return deltas

    def forward_paths(self, layers):
        # The path from hidden layer l to the output, as DFA's.
        paths, path = [], layers[-1].weight_matrix()
        for layer in layers[-2::-1]:
            paths.insert(0, path.T)
            path = layer.weight_matrix() @ path
        return paths

    def error_signal_macs(self, layers):
        return int(self.density * layers[-1].n_out * sum(layer.n_out for layer in layers[:-1]))


class FixedFeedbackOnly(SparseDFA):
    """A rule whose feedback does not depend on the feedback seed (all ones)."""

    name = "ones"
    label = "ones"
    color = None
    random_feedback = False

    def __init__(self):
        pass

    def init_state(self, layers, sample):
        return RuleState(
            fixed=[np.ones((layers[-1].n_out, layer.n_out), sample.dtype) for layer in layers[:-1]]
        )


class FifteenLineScaledDFA(LearningRule):
    """DFA with its feedback scaled by a constant, written against the
    LearningRule base alone, as a user following the guide before the two
    family bases wrote it (issue 28): it serves every hidden layer itself."""

    name = "scaled_dfa_15"
    random_feedback = True

    def __init__(self, scale=1.0):
        self.scale = scale

    def init_state(self, layers, sample):
        n_out = layers[-1].n_out
        return RuleState(fixed=[self.scale * sample((n_out, layer.n_out), layer.n_out)
                                for layer in layers[:-1]])

    def hidden_deltas(self, ctx, state):
        return [ctx.derivative(l, layer.as_output(ctx.error @ B))
                for l, (layer, B) in enumerate(zip(ctx.layers[:-1], state.fixed))]


class FifteenLineScaledDFAOnConv(FifteenLineScaledDFA):
    """The same rule, with the conv layer kinds declared."""

    layer_kinds = ("dense", "rd", "conv2d", "maxpool2d")
