"""Convolutional network classifier trained by DFA and the other rules.

Like ``_mlp.py``'s estimators, it only declares and validates parameters and
chooses the layers (``_conv.py``'s convolution and pooling layers, then
dense ones); the engine trains it.
"""

from numbers import Integral

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions

from ._classifier import _ClassifierMixin
from ._conv import AvgPool2DLayer, Conv2DLayer, GlobalAvgPool2DLayer, MaxPool2DLayer
from ._estimator_base import BaseDFA
from ._layers import DenseLayer


def _is_count(value, low):
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= low


class ConvDFAClassifier(_ClassifierMixin, ClassifierMixin, BaseDFA):
    """Convolutional network classifier trained by Direct Feedback Alignment.

    Convolution blocks (a convolution, the activation, then max or average
    pooling), optionally global average pooling, then dense layers, as in
    LeNet and the CIFAR nets of the feedback-alignment literature. Each layer
    that learns gets its
    delta from ``rule``: under ``"dfa"`` the output error reaches each layer
    with parameters directly, through fixed random feedback (a convolution
    followed by pooling and another convolution gets it through a random
    kernel of the convolution above, as in biotorch: ``conv_feedback`` of the
    direct rules chooses the form); the layer-by-layer rules
    pass their signal back through every layer, pooling included, with
    kernels standing in for the forward ones (fixed random for ``"fa"``,
    sign-concordant for ``"usf"``, ``"frsf"``, ``"brsf"``, learnt for
    ``"kp"``). Everything else is :class:`DFAClassifier`'s.

    The defaults build the LeNet of biotorch's MNIST benchmark (Sanfiz and
    Akrout, 2021) for 32x32 images: 6, 16 and 120 kernels of 5x5, 2x2 max
    pooling after the first two, ReLU, then 84 hidden units. The Examples
    build biotorch's CIFAR LeNet and Nøkland's (2016) CIFAR net.

    Parameters
    ----------
    conv_layers : sequence of (int, int), default=((6, 5), (16, 5), (120, 5))
        ``(out_channels, kernel_size)`` of each convolution block; kernels
        are square.
    pool_size : int or sequence of int, default=2
        Pooling after each block, over ``pool_size x pool_size`` windows; 1
        is none. An int pools after every block but the last (LeNet's third
        convolution gives 1x1 maps); a sequence gives each block's size.
    padding : int or sequence of int, default=0
        Zeros added around each block's input, for every block or per block.
    input_shape : (int, int, int) or None, default=None
        ``(channels, height, width)`` of the images whose pixels are the
        columns of X, flattened in that order (as torch flattens a
        ``(C, H, W)`` tensor: all of channel 0 row by row, then channel 1...).
        ``None``: one channel, square images when ``n_features`` is a
        perfect square, else a single row ``(1, 1, n_features)``.
    hidden_layer_sizes : array-like of shape (n_dense_hidden,) or int, default=(84,)
        Widths of the dense hidden layers after the convolutions.
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        Activation of every hidden layer, convolutions included.
    rule : {"dfa", "fa", "bp", "drtp", "sdfa", "usf", "frsf", "brsf", "kp", "dkp"}, default="dfa"
        Learning rule (see :class:`DFAClassifier`); all ten have a
        convolutional form.
    conv_stride : int or sequence of int, default=1
        Step between a convolution's kernel positions, for every block or per
        block; a map of side ``H`` gives ``(H + 2 padding - kernel_size) //
        conv_stride + 1`` (torch's ``conv2d``).
    pool : {"max", "avg"}, default="max"
        The pooling of every block: the maximum (torch's ``max_pool2d``, the
        first maximum on ties) or the mean (``avg_pool2d``) of each window.
    pool_stride : int, sequence of int or None, default=None
        Step between pooling windows, for every block or per block; ignored
        where a block does not pool. None is each block's ``pool_size``
        (windows side by side); a smaller stride overlaps them, as the 3x3
        max pooling at stride 2 of Nøkland's CIFAR net. Rows and columns no
        window reaches are left out (torch's floor mode).
    global_pool : bool, default=False
        Average each map of the last block to one value (global average
        pooling, biotorch's CIFAR LeNet), so that the first dense layer reads
        one value per channel.
    solver : {"adam", "sgd", "rmsprop", "lbfgs"}, default="adam"
        Optimizer; ``"lbfgs"`` (``rule="bp"`` only) as in
        :class:`DFAClassifier`.
    alpha : float, default=1e-4
        L2 penalty on the weights and kernels (not the biases).
    batch_size : int or "auto", default="auto"
        Mini-batch size; ``"auto"`` is ``min(200, n_samples)``.
    learning_rate : {"constant", "invscaling", "adaptive", "step"}, default="constant"
        Learning-rate schedule of ``solver="sgd"``.
    learning_rate_init : float, default=1e-3
        Initial learning rate.
    power_t : float, default=0.5
        Exponent of the ``"invscaling"`` schedule.
    step_epochs : array-like of int, default=(50, 75)
        With ``learning_rate="step"``: the epochs after which the learning
        rate is multiplied by ``step_factor`` (torch's ``MultiStepLR``
        milestones), counted over every epoch the optimizer has run,
        ``warm_start`` and ``partial_fit`` included.
    step_factor : float, default=0.1
        The factor of the ``"step"`` schedule.
    max_iter : int, default=200
        Maximum number of epochs.
    shuffle : bool, default=True
        Whether to shuffle samples at each epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, shuffling, dropout, the validation split and (by
        default) the feedback.
    tol : float, default=1e-4
        Tolerance of the stopping criterion.
    verbose : bool or int, default=False
        Print one line per epoch.
    warm_start : bool, default=False
        Continue from the previous fit (see :class:`DFAClassifier`); a change
        of the architecture raises a ValueError.
    momentum : float, default=0.9
        Momentum of ``"sgd"``.
    nesterovs_momentum : bool, default=True
        Nesterov's momentum for ``"sgd"``.
    early_stopping : bool, default=False
        Stop on a held-out validation score and restore the best weights.
    validation_fraction : float, default=0.1
        Held-out fraction for early stopping.
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's moment decay rates.
    epsilon : float, default=1e-8
        Numerical-stability term of Adam and RMSprop.
    rho : float, default=0.9
        RMSprop's decay rate.
    n_iter_no_change : int or np.inf, default=10
        Epochs without improvement before stopping.
    max_fun : int, default=15000
        ``solver="lbfgs"`` only: maximum number of loss evaluations.
    feedback_distribution : {"uniform", "gaussian"}, default="uniform"
        Distribution of the random feedback entries.
    feedback_scale : float, "auto" or "glorot", default="auto"
        Scale of the feedback entries; ``"auto"`` is ``1 / sqrt(width)`` of
        the receiving layer (for a feedback kernel, its fan-in
        ``in_channels * kh * kw``); ``"glorot"`` is Glorot's variance of each
        feedback matrix or kernel, fans counted as torch counts them
        (biotorch's ``xavier_uniform_`` backward weights).
    feedback_random_state : int, RandomState instance or None, default=None
        Seeds the feedback alone.
    weight_init : {"glorot", "glorot_zero_bias", "zeros", "normal"}, \
            default="glorot"
        Initial weights, as in :class:`DFAClassifier`; Glorot's bound uses a kernel's fans
        ``in_channels * kh * kw`` and ``out_channels * kh * kw``, as torch.
    dropout : float or (float, float), default=0.0
        Dropout rate after each hidden activation, or
        ``(input_rate, hidden_rate)``.
    track_alignment : bool or int, default=False
        Record alignment angles every ``track_alignment`` updates.
    feedback_decay : float, default=1e-3
        Decay of the learnt feedback of ``"kp"`` and ``"dkp"``.
    output_activation : {"auto", "sigmoid"}, default="auto"
        As in :class:`DFAClassifier`.

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        Class labels.
    input_shape_ : tuple of int
        ``(channels, height, width)`` the columns of X were read as.
    coefs_ : list of ndarray
        The convolution kernels, shaped ``(out_channels, in_channels, kh,
        kw)`` as torch's, then the dense weights ``(n_in, n_out)``; the first
        dense layer reads the last feature map flattened in (C, H, W) order.
        Pooling has no parameters.
    intercepts_ : list of ndarray
        The biases of each convolution and dense layer.
    feedback_ : list of ndarray
        The rule's feedback, per hidden layer that learns.
    n_params_ : int
        Number of trainable parameters.
    loss_ : float
        Loss at the last epoch.
    loss_curve_ : list of float
        Loss at each epoch.
    best_loss_ : float or None
        Lowest training loss (None with early stopping).
    validation_scores_ : list of float or None
        Validation accuracy per epoch (early stopping only).
    best_validation_score_ : float or None
        Best validation accuracy (early stopping only).
    alignment_ : ndarray of shape (n_records, n_hidden_layers)
        Alignment angles in degrees between the rule's and
        back-propagation's deltas (see ``track_alignment``).
    weight_alignment_ : ndarray of shape (n_records, n_hidden_layers)
        Angles in degrees between each hidden layer's feedback and the
        forward weights it stands in for.
    alignment_steps_ : ndarray of shape (n_records,)
        The update count at which each ``alignment_`` row was taken.
    n_iter_ : int
        Epochs run by the last call to fit.
    t_ : int
        Training samples seen.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen during fit, when X has string column names.
    n_layers_ : int
        Number of layers, input and output included (pooling counts).
    n_outputs_ : int
        Number of outputs.
    out_activation_ : str
        Output activation (``"softmax"`` or ``"logistic"``).

    See Also
    --------
    DFAClassifier : The same without convolutions.

    References
    ----------
    Nøkland, A. (2016). Direct Feedback Alignment Provides Learning in Deep
    Neural Networks. NeurIPS.

    Sanfiz, A. J. and Akrout, M. (2021). Benchmarking the Accuracy and
    Robustness of Feedback Alignment Algorithms. arXiv:2108.13446.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import train_test_split
    >>> from skdfa import ConvDFAClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X_train, X_test, y_train, y_test = train_test_split(
    ...     X / 16, y, stratify=y, random_state=0)
    >>> clf = ConvDFAClassifier(conv_layers=((8, 3),), pool_size=(2,),
    ...                         hidden_layer_sizes=(64,), learning_rate_init=1e-2,
    ...                         max_iter=20, random_state=0).fit(X_train, y_train)
    >>> clf.input_shape_, clf.coefs_[0].shape
    ((1, 8, 8), (8, 1, 3, 3))
    >>> clf.score(X_test, y_test) > 0.9
    True

    biotorch's CIFAR LeNet (``biotorch/models/le_net.py``, ``LeNetCIFAR``):
    3x3 convolutions of 32, 64 and 128 kernels, 2x2 max pooling after the
    first two, global average pooling, 256 hidden units; and the trunk of
    Nøkland's CIFAR net (``Models/conv.lua`` of ``anokland/dfa-torch``): 96,
    128 and 256 kernels of 5x5 with padding 2, each followed by 3x3 max
    pooling at stride 2, two dense layers of 2048, zero initial weights (as
    it starts DFA and FA with tanh units).

    >>> import numpy as np
    >>> X_cifar, y_cifar = np.random.RandomState(0).rand(4, 3 * 32 * 32), [0, 1, 2, 3]
    >>> lenet = ConvDFAClassifier(((32, 3), (64, 3), (128, 3)), global_pool=True,
    ...                           hidden_layer_sizes=(256,), input_shape=(3, 32, 32),
    ...                           max_iter=1).fit(X_cifar, y_cifar)
    >>> [W.shape for W in lenet.coefs_]
    [(32, 3, 3, 3), (64, 32, 3, 3), (128, 64, 3, 3), (128, 256), (256, 4)]
    >>> nokland = ConvDFAClassifier(((96, 5), (128, 5), (256, 5)), pool_size=(3, 3, 3),
    ...                             pool_stride=2, padding=2, hidden_layer_sizes=(2048, 2048),
    ...                             input_shape=(3, 32, 32), activation="tanh",
    ...                             weight_init="zeros", max_iter=1).fit(X_cifar, y_cifar)
    >>> [W.shape for W in nokland.coefs_[2:]]
    [(256, 128, 5, 5), (2304, 2048), (2048, 2048), (2048, 4)]
    """

    _parameter_constraints: dict = {
        **BaseDFA._parameter_constraints,
        "conv_layers": ["array-like"],
        "pool_size": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "padding": [Interval(Integral, 0, None, closed="left"), "array-like"],
        "input_shape": [None, "array-like"],
        "conv_stride": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "pool": [StrOptions({"max", "avg"})],
        "pool_stride": [None, Interval(Integral, 1, None, closed="left"), "array-like"],
        "global_pool": ["boolean"],
        "output_activation": [StrOptions({"auto", "sigmoid"})],
    }

    _structure_params = (
        *BaseDFA._structure_params, "conv_layers", "pool_size", "padding", "input_shape",
        "conv_stride", "pool", "pool_stride", "global_pool",
    )

    def __init__(
        self,
        conv_layers=((6, 5), (16, 5), (120, 5)),
        pool_size=2,
        padding=0,
        input_shape=None,
        hidden_layer_sizes=(84,),
        activation="relu",
        rule="dfa",
        *,
        conv_stride=1,
        pool="max",
        pool_stride=None,
        global_pool=False,
        solver="adam",
        alpha=1e-4,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=1e-3,
        power_t=0.5,
        step_epochs=(50, 75),
        step_factor=0.1,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        rho=0.9,
        n_iter_no_change=10,
        max_fun=15000,
        feedback_distribution="uniform",
        feedback_scale="auto",
        feedback_random_state=None,
        weight_init="glorot",
        dropout=0.0,
        track_alignment=False,
        feedback_decay=1e-3,
        output_activation="auto",
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            rule=rule,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            step_epochs=step_epochs,
            step_factor=step_factor,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            rho=rho,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            feedback_distribution=feedback_distribution,
            feedback_scale=feedback_scale,
            feedback_random_state=feedback_random_state,
            weight_init=weight_init,
            dropout=dropout,
            track_alignment=track_alignment,
            feedback_decay=feedback_decay,
        )
        self.conv_layers = conv_layers
        self.pool_size = pool_size
        self.padding = padding
        self.input_shape = input_shape
        self.conv_stride = conv_stride
        self.pool = pool
        self.pool_stride = pool_stride
        self.global_pool = global_pool
        self.output_activation = output_activation

    # -- the architecture's parameters ------------------------------------------

    def _invalid(self, name, what):
        return InvalidParameterError(
            f"The {name!r} parameter of {type(self).__name__} must be {what}, "
            f"got {getattr(self, name)!r}."
        )

    def _blocks(self):
        """``conv_layers`` as a tuple of ``(out_channels, kernel_size)`` pairs."""
        try:
            blocks = tuple(tuple(block) for block in self.conv_layers)
        except TypeError:
            blocks = None
        if not blocks or not all(
            len(b) == 2 and _is_count(b[0], 1) and _is_count(b[1], 1) for b in blocks
        ):
            raise self._invalid(
                "conv_layers", "a non-empty sequence of (out_channels, kernel_size) "
                "pairs of positive integers"
            )
        return tuple((int(c), int(k)) for c, k in blocks)

    def _per_block(self, name, low, n_blocks, default_last):
        value = getattr(self, name)
        if _is_count(value, low):
            values = (int(value),) * n_blocks
            if default_last is not None:
                values = values[:-1] + (default_last,)
            return values
        try:
            values = tuple(value)
        except TypeError:
            values = ()
        if len(values) != n_blocks or not all(_is_count(v, low) for v in values):
            raise self._invalid(
                name, f"an integer >= {low} or one per block of conv_layers "
                f"({n_blocks} integers >= {low})"
            )
        return tuple(int(v) for v in values)

    def _architecture(self):
        """Per block: ``(out_channels, kernel_size)``, then the pool sizes,
        paddings, convolution strides and pooling strides."""
        blocks = self._blocks()
        n_blocks = len(blocks)
        pools = self._per_block("pool_size", 1, n_blocks, default_last=1)
        paddings = self._per_block("padding", 0, n_blocks, default_last=None)
        conv_strides = self._per_block("conv_stride", 1, n_blocks, default_last=None)
        pool_strides = (
            pools if self.pool_stride is None
            else self._per_block("pool_stride", 1, n_blocks, default_last=None)
        )
        return blocks, pools, paddings, conv_strides, pool_strides

    def _image_shape(self, n_features):
        """``(C, H, W)`` of the images in X's rows."""
        if self.input_shape is None:
            side = int(round(np.sqrt(n_features)))
            return (1, side, side) if side * side == n_features else (1, 1, n_features)
        try:
            shape = tuple(self.input_shape)
        except TypeError:
            shape = ()
        if len(shape) != 3 or not all(_is_count(s, 1) for s in shape):
            raise self._invalid(
                "input_shape", "None or (channels, height, width), three positive integers"
            )
        shape = tuple(int(s) for s in shape)
        if np.prod(shape) != n_features:
            raise ValueError(
                f"input_shape={shape} describes images of {int(np.prod(shape))} "
                f"values, but X has {n_features} features per sample."
            )
        return shape

    # -- hooks of BaseDFA -------------------------------------------------------------

    def _built_settings(self):
        settings = super()._built_settings()
        blocks, pools, paddings, conv_strides, pool_strides = self._architecture()
        settings.update(
            conv_layers=blocks, pool_size=pools, padding=paddings, conv_stride=conv_strides,
            # A block that does not pool has no stride to compare.
            pool_stride=tuple(s if p > 1 else None for p, s in zip(pools, pool_strides)),
        )
        if self.input_shape is not None:
            settings["input_shape"] = tuple(self.input_shape)
        return settings

    def _make_layers(self, units):
        shape = self._image_shape(units[0])
        self.input_shape_ = shape
        pooling = {"max": MaxPool2DLayer, "avg": AvgPool2DLayer}[self.pool]
        layers = []
        for i, ((channels, kernel), pool, pad, stride, pool_stride) in enumerate(
            zip(*self._architecture())
        ):
            layers.append(
                Conv2DLayer(shape, channels, kernel, pad, stride, name=f"conv_layers[{i}]")
            )
            if pool > 1:
                layers.append(pooling(layers[-1].output_shape, pool, pool_stride,
                                      name=f"the pooling after conv_layers[{i}]"))
            shape = layers[-1].output_shape
        if self.global_pool:
            layers.append(GlobalAvgPool2DLayer(shape))
            shape = layers[-1].output_shape
        dense = [int(np.prod(shape)), *units[1:]]
        layers += [DenseLayer(n_in, n_out) for n_in, n_out in zip(dense[:-1], dense[1:])]
        return layers

    def _initialize(self, X, Y, hidden):
        super()._initialize(X, Y, hidden)
        self.n_layers_ = self._fit_state.network.n_layers + 1

    def _expose_params(self):
        learning = [layer for layer in self._fit_state.network.layers if layer.params]
        self.coefs_ = [layer.coef for layer in learning]
        self.intercepts_ = [layer.intercept for layer in learning]

    def _exposed_params(self):
        pairs, i = [], 0
        for layer in self._fit_state.network.layers:
            if not layer.params:
                pairs.append([])
                continue
            pairs.append([(f"coefs_[{i}]", self.coefs_[i]),
                          (f"intercepts_[{i}]", self.intercepts_[i])])
            i += 1
        return pairs
