"""ConvDFAClassifier: exact back-propagation against torch autograd, each rule's
convolutional deltas against hand computations, shapes, and estimator behaviour."""

import pickle
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skdfa import ConvDFAClassifier, StackingDFA

FASHION_MNIST_SUBSET = Path(__file__).parent / "data" / "fashion-mnist-subset"

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
F = torch.nn.functional

# A small conv net for the 8x8 digits: 8x8 -> conv 3x3 -> 6x6 -> pool -> 3x3
# -> conv 2x2 (padding 1) -> 4x4 -> 16*... then dense.
SMALL = dict(conv_layers=((4, 3), (5, 2)), pool_size=(2, 1), padding=(0, 1),
             hidden_layer_sizes=(7,))


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16, y, stratify=y, random_state=0)


# Nets on the 8x8 digits that use each block of the CIFAR nets.
BLOCK_NETS = {
    # 8x8 -> conv 3x3, padding 1, stride 2 -> 4x4 -> conv 3x3, padding 1,
    # stride 2 -> 2x2
    "conv_stride": dict(conv_layers=((4, 3), (5, 3)), conv_stride=2, padding=1,
                        pool_size=1, hidden_layer_sizes=(7,)),
    # 8x8 -> conv 3x3 -> 6x6 -> overlapping 3x3 max pool at stride 2 -> 2x2
    # -> conv 2x2, padding 1 -> 3x3 (Nøkland's pooling)
    "overlapping_max_pool": dict(conv_layers=((4, 3), (5, 2)), pool_size=(3, 1),
                                 pool_stride=2, padding=(0, 1), hidden_layer_sizes=(7,)),
    # 8x8 -> conv 3x3 -> 6x6 -> 2x2 average at stride 1 -> 5x5 -> conv 2x2
    # -> 4x4 -> 2x2 average -> 2x2
    "avg_pool": dict(conv_layers=((4, 3), (5, 2)), pool="avg", pool_size=(2, 2),
                     pool_stride=(1, 2), hidden_layer_sizes=(7,)),
    # 8x8 -> conv 3x3 -> 6x6 -> conv 3x3 -> 4x4 -> global average -> 6
    # (biotorch's CIFAR LeNet)
    "global_avg_pool": dict(conv_layers=((4, 3), (6, 3)), pool_size=1, global_pool=True,
                            hidden_layer_sizes=(7,)),
}


class _FeedbackConv(torch.autograd.Function):
    """conv2d whose input gradient goes through a feedback kernel ``B``
    (biotorch's FA conv layer)."""

    @staticmethod
    def forward(ctx, x, W, b, B, stride, padding):
        ctx.save_for_backward(x, W, B)
        ctx.stride, ctx.padding = stride, padding
        return F.conv2d(x, W, b, stride=stride, padding=padding)

    @staticmethod
    def backward(ctx, grad):
        x, W, B = ctx.saved_tensors
        s, p = ctx.stride, ctx.padding
        return (torch.nn.grad.conv2d_input(x.shape, B, grad, stride=s, padding=p),
                torch.nn.grad.conv2d_weight(x, W.shape, grad, stride=s, padding=p),
                grad.sum((0, 2, 3)), None, None, None)


class _FeedbackLinear(torch.autograd.Function):
    """``x @ W + b`` whose input gradient is ``grad @ B``."""

    @staticmethod
    def forward(ctx, x, W, b, B):
        ctx.save_for_backward(x, B)
        return x @ W + b

    @staticmethod
    def backward(ctx, grad):
        x, B = ctx.saved_tensors
        return grad @ B, x.T @ grad, grad.sum(0), None


def _each_block(value, n_blocks):
    return list(value) if np.iterable(value) else [value] * n_blocks


def _torch_net(clf):
    """``clf``'s network as a list of stages written with torch.nn.functional,
    read from its parameters: ``("conv", stride, padding)``, ``("pool",
    function)``, ``("dense",)``."""
    params = clf.get_params()
    n_blocks = len(params["conv_layers"])
    pool_sizes = params["pool_size"]
    if not np.iterable(pool_sizes):  # an int pools after every block but the last
        pool_sizes = [pool_sizes] * (n_blocks - 1) + [1]
    pool_strides = (pool_sizes if params["pool_stride"] is None
                    else _each_block(params["pool_stride"], n_blocks))
    pool = {"max": F.max_pool2d, "avg": F.avg_pool2d}[params["pool"]]
    stages = []
    for size, pool_stride, pad, stride in zip(
        pool_sizes, pool_strides, _each_block(params["padding"], n_blocks),
        _each_block(params["conv_stride"], n_blocks), strict=True,
    ):
        stages.append(("conv", stride, pad))
        if size > 1:
            stages.append(("pool", lambda h, k=size, s=pool_stride: pool(h, k, s)))
    if params["global_pool"]:
        stages.append(("pool", lambda h: F.avg_pool2d(h, h.shape[3])))  # biotorch's
    return stages + [("dense",)] * (len(clf.coefs_) - n_blocks)


def _torch_forward(clf, X, activation=torch.relu, feedback=None):
    """The network of ``clf`` (autograd on); with ``feedback`` (``clf.feedback_``
    of a layer-by-layer rule), each layer above the first passes gradients
    back through its feedback instead of its weights."""
    params, outputs = [], []
    out = torch.tensor(X).reshape(X.shape[0], *clf.input_shape_)
    i = 0
    for stage in _torch_net(clf):
        if stage[0] == "pool":
            out = stage[1](out)
            continue
        W = torch.tensor(clf.coefs_[i], requires_grad=True)
        b = torch.tensor(clf.intercepts_[i], requires_grad=True)
        params += [W, b]
        B = None if feedback is None or i == 0 else torch.tensor(feedback[i - 1])
        if stage[0] == "conv":
            out = (F.conv2d(out, W, b, stride=stage[1], padding=stage[2]) if B is None
                   else _FeedbackConv.apply(out, W, b, B, stage[1], stage[2]))
        else:
            out = out.flatten(1)
            out = out @ W + b if B is None else _FeedbackLinear.apply(out, W, b, B)
        i += 1
        if i < len(clf.coefs_):
            out = activation(out)
    return out, params


@pytest.mark.parametrize("net", ["small", *BLOCK_NETS])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_bp_forward_and_one_sgd_step_match_torch_autograd(digits, activation, net):
    X, y = digits[0][:50], digits[2][:50]
    lr, alpha = 0.1, 1e-3
    clf = ConvDFAClassifier(
        **(SMALL if net == "small" else BLOCK_NETS[net]), rule="bp", activation=activation,
        solver="sgd", momentum=0.0, learning_rate_init=lr, alpha=alpha, batch_size=50,
        max_iter=1, shuffle=False, random_state=0, warm_start=True,
    )
    clf.fit(X, y)  # one step away from the initial weights
    act = {"relu": torch.relu, "tanh": torch.tanh}[activation]
    logits, params = _torch_forward(clf, X, act)
    np.testing.assert_allclose(
        clf.predict_proba(X), torch.softmax(logits, 1).detach().numpy(), rtol=0, atol=1e-12
    )
    loss = F.cross_entropy(logits, torch.tensor(y))
    weights = params[0::2]
    loss = loss + 0.5 * alpha * sum((W * W).sum() for W in weights) / len(X)
    loss.backward()
    expected = [(p - lr * p.grad).detach().numpy() for p in params]
    clf.fit(X, y)  # the second step, from the weights torch saw
    got = [a for pair in zip(clf.coefs_, clf.intercepts_) for a in pair]
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-12)
    assert clf.loss_curve_[-1] == pytest.approx(loss.item(), rel=1e-12)


def _second_step(clf, X, y):
    """Fit ``clf`` (warm_start, SGD at rate 1, no momentum) twice; return
    the parameters and feedback before the second step and what it took
    from each parameter."""
    clf.fit(X, y)  # a first step: the feedback is now what the next step uses
    coefs = [c.copy() for c in clf.coefs_]
    intercepts = [b.copy() for b in clf.intercepts_]
    feedback = [B.copy() for B in clf.feedback_]
    clf.fit(X, y)
    before = [a for pair in zip(coefs, intercepts) for a in pair]
    after = [a for pair in zip(clf.coefs_, clf.intercepts_) for a in pair]
    return coefs, intercepts, feedback, [old - new for old, new in zip(before, after)]


def _one_step_estimator(net, rule):
    return ConvDFAClassifier(
        **BLOCK_NETS[net], rule=rule, activation="tanh", solver="sgd", momentum=0.0,
        learning_rate_init=1.0, alpha=0.0, batch_size=40, shuffle=False, max_iter=1,
        feedback_decay=0.0, warm_start=True, random_state=0,
    )


@pytest.mark.parametrize("net", BLOCK_NETS)
@pytest.mark.parametrize("rule", ["fa", "usf", "frsf", "kp"])
def test_layer_by_layer_rules_pass_their_signal_back_through_each_block(digits, rule, net):
    # The reference: autograd through torch's own pooling and strided
    # convolutions, each layer above the first sending its gradient back
    # through its feedback (biotorch's FA layers).
    X, y = digits[0][:40], digits[2][:40]
    clf = _one_step_estimator(net, rule)
    coefs, intercepts, feedback, steps = _second_step(clf, X, y)
    clf.coefs_, clf.intercepts_ = coefs, intercepts  # torch reads the weights before
    logits, params = _torch_forward(clf, X, torch.tanh, feedback)
    F.cross_entropy(logits, torch.tensor(y)).backward()
    for step, p in zip(steps, params, strict=True):
        np.testing.assert_allclose(step, p.grad.numpy(), rtol=1e-10, atol=1e-13)
    assert np.abs(steps[0]).max() > 1e-4  # the signal reached the first convolution


def _torch_direct_gradients(clf, X, y, feedback, form):
    """Every parameter's gradient under DFA, ``form`` "map" (``e @ B_l`` at
    each layer's output), "pooled" (dfa-torch's: at the input of the next
    layer with parameters, after the poolings in between) or "kernel"
    (biotorch's: there too, through the next layer's feedback kernel when it
    is a convolution); the last two go back through the poolings by torch's
    autograd."""
    n = X.shape[0]
    stages = _torch_net(clf)
    pre, params, inputs, after = [], [], [], []
    out = torch.tensor(X).reshape(n, *clf.input_shape_)
    i = 0
    for stage in stages:
        if stage[0] == "pool":
            after[-1].append(stage[1])
            out = stage[1](out)
            continue
        out = out.detach().requires_grad_()  # each layer's input: its own delta only
        inputs.append(out)
        W = torch.tensor(clf.coefs_[i], requires_grad=True)
        b = torch.tensor(clf.intercepts_[i], requires_grad=True)
        params += [W, b]
        a = (F.conv2d(out, W, b, stride=stage[1], padding=stage[2]) if stage[0] == "conv"
             else out.flatten(1) @ W + b)
        pre.append(a)
        after.append([])
        i += 1
        out = torch.tanh(a) if i < len(clf.coefs_) else a
    e = ((torch.softmax(out, 1) - torch.tensor(np.eye(out.shape[1])[y])) / n).detach()
    deltas, blocks = [], iter(feedback)
    for l, a in enumerate(pre[:-1]):
        B = torch.tensor(next(blocks))
        h = torch.tanh(a.detach()).requires_grad_()
        pooled = h
        for pool in after[l]:
            pooled = pool(pooled)
        if form == "map":
            at_h = (e @ B).reshape(h.shape)
        else:
            above = inputs[l + 1]
            if B.ndim == 4:  # the convolution above: its input gradient of e everywhere
                stride, pad = [s for s in stages if s[0] != "pool"][l + 1][1:]
                out_above = pre[l + 1]
                repeated = e[:, :, None, None].expand(n, e.shape[1], *out_above.shape[2:])
                at_input = torch.nn.grad.conv2d_input(above.shape, B, repeated,
                                                      stride=stride, padding=pad)
            else:
                at_input = (e @ B).reshape(pooled.shape)
            at_h, = torch.autograd.grad(pooled, h, at_input)
        deltas.append(at_h * (1 - h.detach() ** 2))
    grads = torch.autograd.grad(pre, params, grad_outputs=[*deltas, e])
    return [g.numpy() for g in grads]


@pytest.mark.parametrize("net", BLOCK_NETS)
@pytest.mark.parametrize("form", ["map", "pooled", "kernel"])
def test_direct_rules_send_their_signal_around_each_block(digits, form, net):
    from skdfa.rules import DirectFeedbackAlignment

    X, y = digits[0][:40], digits[2][:40]
    clf = _one_step_estimator(net, DirectFeedbackAlignment(conv_feedback=form))
    coefs, intercepts, feedback, steps = _second_step(clf, X, y)
    clf.coefs_, clf.intercepts_ = coefs, intercepts
    expected = _torch_direct_gradients(clf, X, y, feedback, form)
    for step, grad in zip(steps, expected, strict=True):
        np.testing.assert_allclose(step, grad, rtol=1e-10, atol=1e-13)
    assert np.abs(steps[0]).max() > 1e-4


def test_defaults_build_biotorch_lenet():
    X = np.random.RandomState(0).rand(20, 32 * 32)
    y = np.arange(20) % 10
    clf = ConvDFAClassifier(max_iter=1, random_state=0)
    clf.fit(X, y)
    assert clf.input_shape_ == (1, 32, 32)
    assert [a.shape for a in clf.coefs_] == [
        (6, 1, 5, 5), (16, 6, 5, 5), (120, 16, 5, 5), (120, 84), (84, 10)
    ]
    assert [type(layer).__name__ for layer in clf._fit_state.network.layers] == [
        "Conv2DLayer", "MaxPool2DLayer", "Conv2DLayer", "MaxPool2DLayer", "Conv2DLayer",
        "DenseLayer", "DenseLayer",
    ]
    # biotorch's LeNetMNIST: 61,706 parameters.
    assert clf.n_params_ == 61706
    assert clf.activation == "relu"


def test_cifar_nets_of_biotorch_and_nokland():
    X = np.random.RandomState(0).rand(10, 3 * 32 * 32)
    y = np.arange(10)
    lenet = ConvDFAClassifier(((32, 3), (64, 3), (128, 3)), global_pool=True,
                              hidden_layer_sizes=(256,), max_iter=1, input_shape=(3, 32, 32))
    lenet.fit(X, y)
    assert [type(layer).__name__ for layer in lenet._fit_state.network.layers] == [
        "Conv2DLayer", "MaxPool2DLayer", "Conv2DLayer", "MaxPool2DLayer", "Conv2DLayer",
        "GlobalAvgPool2DLayer", "DenseLayer", "DenseLayer",
    ]
    # biotorch's LeNetCIFAR: 896 + 18496 + 73856 + 33024 + 2570 parameters.
    assert lenet.n_params_ == 128842
    nokland = ConvDFAClassifier(((96, 5), (128, 5), (256, 5)), pool_size=(3, 3, 3),
                                pool_stride=2, padding=2, hidden_layer_sizes=(2048, 2048),
                                input_shape=(3, 32, 32), weight_init="zeros", max_iter=1)
    nokland.fit(X, y)
    # 32 -> 15 -> 7 -> 3 (dfa-torch's nn.View(nstates[3]*3*3)).
    assert [layer.output_shape for layer in nokland._fit_state.network.layers[:6]] == [
        (96, 32, 32), (96, 15, 15), (128, 15, 15), (128, 7, 7), (256, 7, 7), (256, 3, 3)]
    assert nokland.coefs_[3].shape == (256 * 3 * 3, 2048)


def test_warm_start_compares_the_resolved_strides(digits):
    X, y = digits[0][:100], digits[2][:100]
    clf = ConvDFAClassifier(**BLOCK_NETS["overlapping_max_pool"], max_iter=1, warm_start=True,
                            random_state=0).fit(X, y)
    # Per block, and a stride for the block that does not pool: the same net.
    fitted = clf.get_params()
    clf.set_params(pool_stride=(2, 5), conv_stride=(1, 1)).fit(X, y)
    for name, value in [("pool_stride", 3), ("pool", "avg"), ("conv_stride", 2),
                        ("global_pool", True)]:
        with pytest.raises(ValueError, match=f"fitted with {name}="):
            clf.set_params(**{name: value}).fit(X, y)
        clf.set_params(**{name: fitted[name]})


@pytest.mark.parametrize("n_features, shape", [(64, (1, 8, 8)), (10, (1, 1, 10)), (1, (1, 1, 1))])
def test_input_shape_is_inferred(n_features, shape):
    X = np.random.RandomState(0).rand(12, n_features)
    y = np.arange(12) % 2
    clf = ConvDFAClassifier(conv_layers=((2, 1),), hidden_layer_sizes=(), max_iter=1)
    clf.fit(X, y)
    assert clf.input_shape_ == shape


def test_input_shape_given_reads_channels_first():
    # Two channels of 2x3: a 1x1 kernel on channel 1 alone sees columns 6-11.
    rng = np.random.RandomState(0)
    X = rng.rand(30, 12)
    y = (X[:, 6:].sum(axis=1) > 3).astype(int)
    clf = ConvDFAClassifier(conv_layers=((1, 1),), input_shape=(2, 2, 3), pool_size=1,
                            hidden_layer_sizes=(), max_iter=1, random_state=0)
    clf.fit(X, y)
    assert clf.coefs_[0].shape == (1, 2, 1, 1)
    assert clf.coefs_[1].shape == (6, 1)
    kernel = clf.coefs_[0][0, :, 0, 0]
    maps = X.reshape(30, 2, 2, 3)
    expected = np.maximum(np.tensordot(maps, kernel, axes=([1], [0])).reshape(30, 6)
                          + clf.intercepts_[0][0], 0) @ clf.coefs_[1] + clf.intercepts_[1]
    np.testing.assert_allclose(clf.decision_function(X), expected.ravel(), atol=1e-12)


@pytest.mark.parametrize("params, message", [
    (dict(input_shape=(1, 7, 7)), r"input_shape=\(1, 7, 7\) describes images of 49 values, "
                                  r"but X has 64 features"),
    (dict(conv_layers=((6, 5), (16, 5))), r"conv_layers\[1\]: a kernel of size 5x5 does not "
                                          r"fit its input of shape \(C, H, W\) = \(6, 2, 2\)"),
    (dict(conv_layers=((6, 3),), pool_size=(7,)), r"pooling after conv_layers\[0\]: a pool of "
                                                  r"size 7x7 does not fit .* \(6, 6, 6\)"),
    (dict(conv_layers=((6, 9),)), r"conv_layers\[0\]: a kernel of size 9x9 does not fit"),
    (dict(conv_layers=((6, 11),), padding=1), r"11x11 with padding=1 does not fit"),
    (dict(conv_layers=((6, 3), (4, 3)), conv_stride=(2, 1), pool_size=(2, 1)),
     r"conv_layers\[1\]: a kernel of size 3x3 does not fit .* \(6, 1, 1\)"),
    (dict(conv_layers=((6, 3),), pool="avg", pool_size=(3,), pool_stride=3, padding=0,
          input_shape=(4, 4, 4)), r"pooling after conv_layers\[0\]: a pool of size 3x3 does "
                                  r"not fit .* \(6, 2, 2\)"),
])
def test_shapes_that_do_not_fit_name_the_layer(params, message):
    X = np.random.RandomState(0).rand(10, 64)
    y = np.arange(10) % 2
    with pytest.raises(ValueError, match=message):
        ConvDFAClassifier(**params).fit(X, y)


@pytest.mark.parametrize("params, message", [
    (dict(conv_layers=((6,),)), "'conv_layers' parameter .* must be a non-empty sequence"),
    (dict(conv_layers=()), "'conv_layers' parameter"),
    (dict(conv_layers=((0, 3),)), "'conv_layers' parameter"),
    (dict(pool_size=(2, 2)), r"'pool_size' parameter .* one per block of conv_layers \(3"),
    (dict(padding=(1,)), "'padding' parameter"),
    (dict(input_shape=(8, 8)), "'input_shape' parameter .* three positive integers"),
    (dict(conv_stride=(1, 2)), r"'conv_stride' parameter .* one per block of conv_layers \(3"),
    (dict(conv_stride=0), "'conv_stride' parameter"),
    (dict(pool="min"), "'pool' parameter of ConvDFAClassifier must be a str among"),
    (dict(pool_stride=(2, 0, 1)), "'pool_stride' parameter .* integers >= 1"),
    (dict(pool_stride=1.5), "'pool_stride' parameter"),
    (dict(global_pool="yes"), "'global_pool' parameter"),
])
def test_bad_architecture_parameters(params, message):
    X = np.random.RandomState(0).rand(10, 64)
    y = np.arange(10) % 2
    with pytest.raises(ValueError, match=message):
        ConvDFAClassifier(**params).fit(X, y)


def test_sparse_input_trains_as_dense(digits):
    # Each sparse batch is densified for the convolution: the same model.
    import scipy.sparse as sp

    X, y = digits[0][:100], digits[2][:100]
    params = dict(SMALL, max_iter=2, random_state=0)
    dense = ConvDFAClassifier(**params).fit(X, y)
    sparse = ConvDFAClassifier(**params).fit(sp.csr_matrix(X), y)
    for a, b in zip(dense.coefs_, sparse.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sparse.predict_proba(sp.csr_matrix(X)), dense.predict_proba(X))


def test_pickle_round_trip_predicts_the_same(digits):
    X_train, X_test, y_train, _ = digits
    clf = ConvDFAClassifier(**SMALL, max_iter=2, random_state=0)
    clf.fit(X_train[:200], y_train[:200])
    loaded = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(loaded.predict_proba(X_test), clf.predict_proba(X_test))
    # and keeps training the same way
    clf.partial_fit(X_train[:200], y_train[:200])
    loaded.partial_fit(X_train[:200], y_train[:200])
    for a, b in zip(clf.coefs_, loaded.coefs_):
        np.testing.assert_array_equal(a, b)


def test_warm_start_refuses_a_new_architecture(digits):
    X, y = digits[0][:100], digits[2][:100]
    clf = ConvDFAClassifier(**SMALL, max_iter=1, warm_start=True, random_state=0)
    clf.fit(X, y)
    clf.set_params(conv_layers=((4, 3), (6, 2)))
    with pytest.raises(ValueError, match="fitted with conv_layers"):
        clf.fit(X, y)
    # The same architecture spelled with lists is the same.
    clf.set_params(conv_layers=[[4, 3], [5, 2]], pool_size=[2, 1])
    clf.fit(X, y)


def test_float32_stays_float32(digits):
    X, y = digits[0][:100].astype(np.float32), digits[2][:100]
    X_before = X.copy()
    clf = ConvDFAClassifier(**SMALL, max_iter=2, random_state=0)
    clf.fit(X, y)
    assert all(a.dtype == np.float32 for a in clf.coefs_ + clf.intercepts_)
    assert clf.transform(X).dtype == np.float32
    np.testing.assert_array_equal(X, X_before)


def test_stacking_with_conv_base(digits):
    X_train, X_test, y_train, y_test = digits
    base = ConvDFAClassifier(conv_layers=((8, 3),), pool_size=(2,), hidden_layer_sizes=(32,),
                             rule="frsf", learning_rate_init=0.01, max_iter=15)
    stack = StackingDFA(base, n_estimators=2, random_state=0).fit(X_train, y_train)
    assert stack.score(X_test, y_test) > 0.9


# -- each rule's deltas on a tiny net, by hand ----------------------------------------
#
# conv1 (2 kernels 2x2) on 1x4x4 -> 2x3x3, tanh, max pool 2 -> 2x1x1,
# conv2 (3 kernels 1x1) -> 3x1x1, tanh, dense 3 -> 4, tanh, dense 4 -> 3 classes.
# The references below are written with explicit loops, independent of the
# library's im2col and torch paths.

TINY = dict(conv_layers=((2, 2), (3, 1)), pool_size=(2, 1), hidden_layer_sizes=(4,),
            activation="tanh", input_shape=(1, 4, 4))
ALL_RULES = ["bp", "fa", "usf", "frsf", "brsf", "kp", "dfa", "drtp", "sdfa", "dkp"]


def _conv(X, K, b=None):
    n, _, h, w = X.shape
    o, c, kh, kw = K.shape
    out = np.zeros((n, o, h - kh + 1, w - kw + 1))
    for i in range(h - kh + 1):
        for j in range(w - kw + 1):
            patch = X[:, :, i:i + kh, j:j + kw]
            out[:, :, i, j] = np.einsum("ncpq,ocpq->no", patch, K)
    return out if b is None else out + b[None, :, None, None]


def _conv_back(delta, K, input_hw):
    """dLoss/dX of ``_conv`` (stride 1, no padding), by scattering."""
    n, o, ho, wo = delta.shape
    _, c, kh, kw = K.shape
    dX = np.zeros((n, c, *input_hw))
    for i in range(ho):
        for j in range(wo):
            dX[:, :, i:i + kh, j:j + kw] += np.einsum("no,ocpq->ncpq", delta[:, :, i, j], K)
    return dX


def _conv_kernel_grad(X, delta, kernel_shape):
    o, c, kh, kw = kernel_shape
    grad = np.zeros(kernel_shape)
    for p in range(kh):
        for q in range(kw):
            patch = X[:, :, p:p + delta.shape[2], q:q + delta.shape[3]]
            grad[:, :, p, q] = np.einsum("nohw,nchw->oc", delta, patch)
    return grad


def _pool_2x2_of_3x3(A):
    """Max over the top-left 2x2 window of 3x3 maps, and the window's one-hot argmax."""
    window = A[:, :, :2, :2].reshape(A.shape[0], A.shape[1], 4)
    hit = np.zeros_like(window)
    np.put_along_axis(hit, window.argmax(axis=2)[..., None], 1.0, axis=2)
    mask = np.zeros_like(A)
    mask[:, :, :2, :2] = hit.reshape(A.shape[0], A.shape[1], 2, 2)
    return window.max(axis=2)[:, :, None, None], mask


def _hand_gradients(rule, X, Y, coefs, intercepts, feedback):
    """Every parameter's gradient under ``rule``, from the rule's equations."""
    n = X.shape[0]
    X4 = X.reshape(n, 1, 4, 4)
    W1, W2, W3, W4 = coefs
    b1, b2, b3, b4 = intercepts
    h1 = np.tanh(_conv(X4, W1, b1))                 # (n, 2, 3, 3)
    p1, mask = _pool_2x2_of_3x3(h1)                 # (n, 2, 1, 1)
    h2 = np.tanh(_conv(p1, W2, b2))                 # (n, 3, 1, 1)
    h3 = np.tanh(h2.reshape(n, 3) @ W3 + b3)        # (n, 4)
    logits = h3 @ W4 + b4
    P = np.exp(logits - logits.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    e = (P - Y) / n
    d1, d2, d3 = 1 - h1 ** 2, 1 - h2 ** 2, 1 - h3 ** 2

    if rule in ("dfa", "drtp", "sdfa", "dkp"):
        signal = {"dfa": e, "dkp": e, "drtp": Y / n, "sdfa": np.sign(e) / n}[rule]
        B1, B2, B3 = feedback
        assert B1.shape == (3, 18) and B2.shape == (3, 3) and B3.shape == (3, 4)
        delta3 = (signal @ B3) * d3
        delta2 = (signal @ B2).reshape(n, 3, 1, 1) * d2
        delta1 = (signal @ B1).reshape(n, 2, 3, 3) * d1
    else:
        if rule == "bp":
            K2, B3, B4 = W2, W3.T, W4.T
        else:
            K2, B3, B4 = feedback
            assert K2.shape == W2.shape and B3.shape == W3.T.shape and B4.shape == W4.T.shape
        delta3 = (e @ B4) * d3
        delta2 = (delta3 @ B3).reshape(n, 3, 1, 1) * d2
        at_pool = _conv_back(delta2, K2, (1, 1))     # (n, 2, 1, 1)
        delta1 = mask * at_pool * d1                 # routed to each window's maximum

    grads = [
        _conv_kernel_grad(X4, delta1, W1.shape), delta1.sum(axis=(0, 2, 3)),
        _conv_kernel_grad(p1, delta2, W2.shape), delta2.sum(axis=(0, 2, 3)),
        h2.reshape(n, 3).T @ delta3, delta3.sum(axis=0),
        h3.T @ e, e.sum(axis=0),
    ]
    return grads


@pytest.mark.parametrize("rule", ALL_RULES)
def test_each_rules_conv_update_matches_its_equations(rule):
    from skdfa.rules import RULES, DirectRule

    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, (6, 16))
    y = np.arange(6) % 3
    Y = np.eye(3)[y]
    # The direct rules' equations below are their "map" form's.
    learning_rule = RULES[rule]
    if isinstance(learning_rule, DirectRule):
        learning_rule = type(learning_rule)(conv_feedback="map")
    clf = ConvDFAClassifier(
        **TINY, rule=learning_rule, solver="sgd", momentum=0.0, learning_rate_init=1.0, alpha=0.0,
        batch_size=6, shuffle=False, max_iter=1, feedback_decay=0.0, warm_start=True,
        random_state=0,
    )
    clf.fit(X, y)  # a first step: the feedback is now what the next step uses
    coefs = [c.copy() for c in clf.coefs_]
    intercepts = [b.copy() for b in clf.intercepts_]
    feedback = [B.copy() for B in clf.feedback_]
    clf.fit(X, y)
    expected = _hand_gradients(rule, X, Y, coefs, intercepts, feedback)
    before = [a for pair in zip(coefs, intercepts) for a in pair]
    after = [a for pair in zip(clf.coefs_, clf.intercepts_) for a in pair]
    for old, new, grad in zip(before, after, expected):
        np.testing.assert_allclose(old - new, grad, rtol=1e-10, atol=1e-13)
    if rule == "kp":
        # The learnt kernels and matrices take the forward weights' updates
        # (transposed for the dense ones): B - lr * dW.
        dW2, dW3, dW4 = expected[2], expected[4], expected[6]
        for B_old, B_new, step in zip(feedback, clf.feedback_, [dW2, dW3.T, dW4.T]):
            np.testing.assert_allclose(B_old - B_new, step, rtol=1e-10, atol=1e-13)


# biotorch's DFA (conv_feedback="kernel"): a 10x10 image -> conv 3x3 -> 8x8 ->
# pool -> 4x4 -> conv 3x3, padding 1 -> 4x4 -> pool -> 2x2 -> dense 4 -> 3
# outputs. The first convolution learns through the second's feedback kernel
# (whose offsets do not all reach the border: padding 1 < 3 - 1), the second
# through a matrix onto its pooled map, the dense layer through one onto its
# output.
KERNEL_FORM = dict(conv_layers=((2, 3), (3, 3)), pool_size=(2, 2), padding=(0, 1),
                   hidden_layer_sizes=(4,), activation="relu", input_shape=(1, 10, 10))


def _biotorch_dfa_gradients(signal, X, Y, coefs, intercepts, feedback):
    """Every parameter's gradient under biotorch's DFA (``layers/dfa``): each
    layer with parameters replaces the gradient with respect to its input by
    the projected ``signal``; a convolution's is ``conv2d_input`` of
    ``signal`` repeated over its output map, through its feedback kernel."""
    n = X.shape[0]
    W1, W2, W3, W4 = (torch.tensor(W, requires_grad=True) for W in coefs)
    b1, b2, b3, b4 = (torch.tensor(b, requires_grad=True) for b in intercepts)
    K2, B3, B4 = (torch.tensor(B) for B in feedback)
    assert K2.shape == (3, 2, 3, 3) and B3.shape == (3, 12) and B4.shape == (3, 4)
    a1 = F.conv2d(torch.tensor(X).reshape(n, 1, 10, 10), W1, b1)
    p1, where1 = F.max_pool2d(torch.relu(a1), 2, return_indices=True)
    # Each layer's input detached: its gradients come from its own delta only.
    a2 = F.conv2d(p1.detach(), W2, b2, padding=1)
    p2, where2 = F.max_pool2d(torch.relu(a2), 2, return_indices=True)
    a3 = p2.detach().flatten(1) @ W3 + b3
    logits = torch.relu(a3).detach() @ W4 + b4
    e = ((torch.softmax(logits, 1) - torch.tensor(Y)) / n).detach()
    s = {"dfa": e, "drtp": torch.tensor(Y) / n, "sdfa": torch.sign(e) / n}[signal]

    delta3 = (s @ B4) * (a3 > 0)
    at_p2 = (s @ B3).reshape(p2.shape)
    delta2 = F.max_unpool2d(at_p2, where2, 2, output_size=a2.shape[2:]) * (a2 > 0)
    repeated = s[:, :, None, None].expand(n, 3, *a2.shape[2:])
    at_p1 = torch.nn.grad.conv2d_input(p1.shape, K2, repeated, padding=1)
    delta1 = F.max_unpool2d(at_p1, where1, 2, output_size=a1.shape[2:]) * (a1 > 0)
    grads = torch.autograd.grad(
        [a1, a2, a3, logits], [W1, b1, W2, b2, W3, b3, W4, b4],
        grad_outputs=[delta1, delta2, delta3, e],
    )
    return [g.numpy() for g in grads]


@pytest.mark.parametrize("signal", ["dfa", "drtp", "sdfa"])
def test_kernel_form_update_matches_biotorchs_dfa(signal):
    from skdfa.rules import RULES

    rule = type(RULES[signal])(conv_feedback="kernel")
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, (6, 100))
    y = np.arange(6) % 3
    clf = ConvDFAClassifier(
        **KERNEL_FORM, rule=rule, solver="sgd", momentum=0.0, learning_rate_init=1.0,
        alpha=0.0, batch_size=6, shuffle=False, max_iter=1, warm_start=True, random_state=0,
    )
    clf.fit(X, y)
    coefs = [c.copy() for c in clf.coefs_]
    intercepts = [b.copy() for b in clf.intercepts_]
    feedback = [B.copy() for B in clf.feedback_]
    clf.fit(X, y)
    expected = _biotorch_dfa_gradients(signal, X, np.eye(3)[y], coefs, intercepts, feedback)
    before = [a for pair in zip(coefs, intercepts) for a in pair]
    after = [a for pair in zip(clf.coefs_, clf.intercepts_) for a in pair]
    for old, new, grad in zip(before, after, expected, strict=True):
        np.testing.assert_allclose(old - new, grad, rtol=1e-10, atol=1e-13)
    assert np.abs(expected[0]).max() > 1e-3  # the first convolution did learn


def test_kernel_form_draws_kernels_where_a_convolution_is_above():
    from skdfa.rules import DirectFeedbackAlignment

    X = np.random.RandomState(0).uniform(-1, 1, (6, 100))
    kernel_form = DirectFeedbackAlignment(conv_feedback="kernel")
    kernel = ConvDFAClassifier(**KERNEL_FORM, rule=kernel_form, max_iter=1,
                               track_alignment=1, feedback_distribution="uniform",
                               feedback_scale="auto", random_state=0)
    own_map = ConvDFAClassifier(**KERNEL_FORM, rule=DirectFeedbackAlignment(conv_feedback="map"),
                                max_iter=1, random_state=0)
    shapes = [[B.shape for B in clf.fit(X, np.arange(6) % 3).feedback_]
              for clf in (kernel, own_map)]
    # The second convolution's (n_outputs, C_in, k, k) kernel, then matrices
    # onto the maps each signal lands on: after the pooling, or before it.
    assert shapes == [[(3, 2, 3, 3), (3, 12), (3, 4)], [(3, 128), (3, 48), (3, 4)]]
    # "auto": the kernel is drawn for the kernel's fan-in, C_in k k = 18 (as
    # the feedback-alignment rules' kernels), the matrices for their widths.
    for B, width in zip(kernel.feedback_, [18, 12, 4], strict=True):
        assert 0.8 / np.sqrt(width) < np.abs(B).max() <= 1 / np.sqrt(width)
    # Hidden layers conv, pool, conv, pool, dense: only the dense one's
    # feedback stands in for a matrix (the output layer's weights).
    alignment = kernel.weight_alignment_[-1]
    assert np.isnan(alignment[:4]).all() and 0 < alignment[4] < 180


def test_kernel_form_clones_searches_and_pickles(digits):
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV

    from skdfa.rules import DirectFeedbackAlignment

    X_train, X_test, y_train, _ = digits
    kernel_form = DirectFeedbackAlignment(conv_feedback="kernel")
    map_form = DirectFeedbackAlignment(conv_feedback="map")
    # The default form prints as the default.
    assert repr(kernel_form) == "DirectFeedbackAlignment()"
    assert repr(map_form) == "DirectFeedbackAlignment(conv_feedback='map')"
    assert kernel_form != map_form
    clf = ConvDFAClassifier(**SMALL, rule=kernel_form, max_iter=2, random_state=0)
    copy = clone(clf)
    assert copy.rule == kernel_form and copy.rule is not kernel_form
    search = GridSearchCV(
        clf, {"rule": [map_form, kernel_form]}, cv=2
    ).fit(X_train[:200], y_train[:200])
    assert [p["rule"].conv_feedback for p in search.cv_results_["params"]] == ["map", "kernel"]
    # The two forms learn differently on this network.
    scores = search.cv_results_["mean_test_score"]
    assert scores[0] != scores[1]
    clf.fit(X_train[:200], y_train[:200])
    loaded = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(loaded.predict_proba(X_test), clf.predict_proba(X_test))
    for a, b in zip(loaded.feedback_, clf.feedback_, strict=True):
        np.testing.assert_array_equal(a, b)
    loaded.set_params(warm_start=True, max_iter=1).fit(X_train[:200], y_train[:200])
    clf.set_params(warm_start=True, max_iter=1).fit(X_train[:200], y_train[:200])
    for a, b in zip(loaded.coefs_, clf.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("form", ["kernel", "pooled"])
def test_kernel_and_pooled_forms_refused_by_dkp_and_unknown_forms_named(form):
    from skdfa.rules import DirectFeedbackAlignment, DirectKolenPollack

    X = np.random.RandomState(0).uniform(-1, 1, (6, 100))
    y = np.arange(6) % 3
    with pytest.raises(ValueError, match=f"only conv_feedback='map'; got conv_feedback='{form}'"):
        ConvDFAClassifier(**KERNEL_FORM, rule=DirectKolenPollack(conv_feedback=form),
                          max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="conv_feedback must be one of 'map', 'pooled', "
                       "'kernel'; got 'maps'"):
        ConvDFAClassifier(**KERNEL_FORM, rule=DirectFeedbackAlignment(conv_feedback="maps"),
                          max_iter=1).fit(X, y)


@pytest.mark.parametrize("rule", ["usf", "frsf", "brsf"])
def test_sign_kernels_carry_the_forward_kernels_signs(rule):
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, (6, 64))
    clf = ConvDFAClassifier(conv_layers=((2, 3), (3, 2)), pool_size=(2, 1), rule=rule,
                            hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    clf.fit(X, np.arange(6) % 3)
    kernel_feedback = clf.feedback_[0]
    assert kernel_feedback.shape == clf.coefs_[1].shape == (3, 2, 2, 2)
    np.testing.assert_array_equal(np.sign(kernel_feedback), np.sign(clf.coefs_[1]))
    if rule == "usf":
        # biotorch's scale: the std of Glorot's init, with the kernel's fans.
        fan_in, fan_out = 2 * 2 * 2, 3 * 2 * 2
        np.testing.assert_allclose(np.abs(kernel_feedback), np.sqrt(2 / (fan_in + fan_out)))


# -- numpy and torch, sklearn's checks, real data ---------------------------------------


def _kernel_form_dfa():
    from skdfa.rules import DirectFeedbackAlignment

    return DirectFeedbackAlignment(conv_feedback="kernel")


@pytest.mark.parametrize("rule", [*ALL_RULES, _kernel_form_dfa()], ids=str)
def test_torch_fit_equals_numpy_fit(rule, monkeypatch):
    from sklearn import config_context

    from skdfa._array_ops import ArrayOps, TorchOps

    # torch draws its epochs' row orders on the device (numpy's in
    # distribution only): numpy's orders here, for the same model.
    monkeypatch.setattr(TorchOps, "shuffled_rows", ArrayOps.shuffled_rows)
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, (40, 36))
    y = np.arange(40) % 3
    # tanh and SGD in float64: no ReLU ties or Adam normalisation to amplify
    # the last bits in which numpy's and torch's sums differ.
    params = dict(conv_layers=((3, 3), (4, 2)), pool_size=(2, 1), padding=(1, 0),
                  hidden_layer_sizes=(5,), activation="tanh", rule=rule, solver="sgd",
                  learning_rate_init=0.1, batch_size=16, max_iter=3, random_state=0,
                  track_alignment=2)
    ref = ConvDFAClassifier(**params).fit(X, y)
    with config_context(array_api_dispatch=True):
        other = ConvDFAClassifier(**params).fit(torch.from_numpy(X), torch.from_numpy(y))
        proba = other.predict_proba(torch.from_numpy(X))
    assert isinstance(other.coefs_[0], torch.Tensor)
    for a, b in zip(ref.coefs_ + ref.intercepts_, other.coefs_ + other.intercepts_):
        np.testing.assert_allclose(b.numpy(), a, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(proba.numpy(), ref.predict_proba(X), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(other.alignment_.numpy(), ref.alignment_, atol=1e-6)
    # conv 1, pooling, conv 2, dense: the direct rules send the pooling
    # nothing (NaN), the others a delta through it.
    assert ref.alignment_.shape[1] == 4
    direct = getattr(rule, "name", rule) in ("dfa", "drtp", "sdfa", "dkp")
    assert np.isnan(ref.alignment_[:, 1]).all() == direct


@pytest.mark.slow
@pytest.mark.parametrize("rule, threshold", [("bp", 0.80), ("dfa", 0.67), ("fa", 0.67),
                                             ("usf", 0.80)])
def test_fashion_mnist_accuracy(rule, threshold):
    # 3000 training images, 5 epochs, 2000 test images. Seeds 0, 1, 2 gave
    # bp 0.827 0.833 0.820, dfa 0.693 0.706 0.723 (its "map" form: 0.729
    # 0.747 0.721), fa 0.728 0.744 0.696, usf 0.819 0.841 0.832: thresholds
    # 2-3 points under the lowest.
    from skdfa.datasets import load_fashion_mnist

    # The first 3000 training and 2000 test images, shipped with the tests.
    X, y = load_fashion_mnist(data_home=FASHION_MNIST_SUBSET, subset="train", return_X_y=True)
    X_test, y_test = load_fashion_mnist(data_home=FASHION_MNIST_SUBSET, subset="test",
                                        return_X_y=True)
    clf = ConvDFAClassifier(conv_layers=((8, 5), (16, 5)), hidden_layer_sizes=(64,),
                            activation="tanh", rule=rule, max_iter=5, batch_size=32,
                            learning_rate_init=2e-3, random_state=0)
    clf.fit(X[:3000], y[:3000])
    assert clf.score(X_test[:2000], y_test[:2000]) > threshold


def test_a_rule_without_a_conv_form_names_those_that_have_one():
    from ._custom_rules import SparseDFA

    X = np.random.RandomState(0).rand(10, 16)
    with pytest.raises(ValueError) as info:
        ConvDFAClassifier(conv_layers=((2, 1), (2, 1)), rule=SparseDFA()).fit(
            X, np.arange(10) % 2)
    message = str(info.value)
    assert "rule='sparse_dfa'" in message and "conv2d" in message
    for name in ALL_RULES:
        assert f"'{name}'" in message.split("use one of")[1]


def _noklands_dfa_gradients(X, Y, coefs, intercepts, feedback):
    """Every parameter's gradient under Nøkland's DFA (anokland/dfa-torch):
    ``Models/conv.lua`` puts ``ErrorFeedback`` after each block's pooling,
    where ``Models/ErrorFeedback.lua`` replaces the gradient by ``e @ B`` over
    the pooled map; ``Sequential2.lua`` sends it back through the pooling (to
    each window's maximum) and the nonlinearity to the convolution."""
    n = X.shape[0]
    W1, W2, W3, W4 = (torch.tensor(W, requires_grad=True) for W in coefs)
    b1, b2, b3, b4 = (torch.tensor(b, requires_grad=True) for b in intercepts)
    B1, B2, B3 = (torch.tensor(B) for B in feedback)
    assert B1.shape == (3, 2 * 4 * 4) and B2.shape == (3, 3 * 2 * 2) and B3.shape == (3, 4)
    a1 = F.conv2d(torch.tensor(X).reshape(n, 1, 10, 10), W1, b1)
    p1 = F.max_pool2d(torch.relu(a1), 2)
    a2 = F.conv2d(p1.detach(), W2, b2, padding=1)
    p2 = F.max_pool2d(torch.relu(a2), 2)
    a3 = p2.detach().flatten(1) @ W3 + b3
    logits = torch.relu(a3).detach() @ W4 + b4
    e = ((torch.softmax(logits, 1) - torch.tensor(Y)) / n).detach()
    # ErrorFeedback's gradOutput @ B at each pooled map, sent back through the
    # pooling and the nonlinearity by autograd.
    (delta1,) = torch.autograd.grad(p1, a1, (e @ B1).reshape(p1.shape), retain_graph=True)
    (delta2,) = torch.autograd.grad(p2, a2, (e @ B2).reshape(p2.shape), retain_graph=True)
    delta3 = (e @ B3) * (a3 > 0)
    grads = torch.autograd.grad(
        [a1, a2, a3, logits], [W1, b1, W2, b2, W3, b3, W4, b4],
        grad_outputs=[delta1, delta2, delta3, e],
    )
    return [g.numpy() for g in grads]


def test_pooled_form_update_matches_noklands_error_feedback():
    from skdfa.rules import DirectFeedbackAlignment

    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, (6, 100))
    y = np.arange(6) % 3
    clf = ConvDFAClassifier(
        **KERNEL_FORM, rule=DirectFeedbackAlignment(conv_feedback="pooled"), solver="sgd",
        momentum=0.0, learning_rate_init=1.0, alpha=0.0, batch_size=6, shuffle=False,
        max_iter=1, warm_start=True, random_state=0,
    )
    clf.fit(X, y)
    coefs = [c.copy() for c in clf.coefs_]
    intercepts = [b.copy() for b in clf.intercepts_]
    feedback = [B.copy() for B in clf.feedback_]
    # dfa-torch's scale at -rfb_mag 0: uniform in +-1 / sqrt(C H' W') of the pooled map.
    for B, width in zip(feedback, [32, 12, 4]):
        assert 0.9 / np.sqrt(width) < np.abs(B).max() <= 1 / np.sqrt(width)
    clf.fit(X, y)
    expected = _noklands_dfa_gradients(X, np.eye(3)[y], coefs, intercepts, feedback)
    before = [a for pair in zip(coefs, intercepts) for a in pair]
    after = [a for pair in zip(clf.coefs_, clf.intercepts_) for a in pair]
    for old, new, grad in zip(before, after, expected, strict=True):
        np.testing.assert_allclose(old - new, grad, rtol=1e-10, atol=1e-13)
    assert np.abs(expected[0]).max() > 1e-3  # the first convolution did learn


@pytest.mark.parametrize("rule", ["dfa", "drtp", "sdfa"])
def test_the_three_forms_are_one_on_a_network_without_pooling(rule):
    from skdfa.rules import RULES

    X, y = np.random.RandomState(0).uniform(-1, 1, (30, 64)), np.arange(30) % 3
    params = dict(conv_layers=((3, 3),), pool_size=1, hidden_layer_sizes=(5,), max_iter=2,
                  random_state=0)
    fitted = [
        ConvDFAClassifier(rule=type(RULES[rule])(conv_feedback=form), **params).fit(X, y)
        for form in ["map", "pooled"]
    ]
    for a, b in zip(fitted[0].coefs_, fitted[1].coefs_, strict=True):
        np.testing.assert_array_equal(a, b)
