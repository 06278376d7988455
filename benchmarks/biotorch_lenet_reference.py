"""biotorch's own code on the LeNet recipe of ``skdfa reproduce biotorch-lenet``.

The other side of the MNIST and Fashion-MNIST rows of the table in
``docs/user_guide/conv.rst``: biotorch 0.0.16 (commit 74fad0d) trains its
``LeNetMNIST`` with one rule and the recipe skdfa runs (SGD, momentum 0.9,
weight decay 1e-3 on every parameter, batch 64 dropping the last short
batch, the rate divided by 10 after epochs 50 and 75, Xavier-uniform weights
and feedback, zero biases, 32x32 images), and prints the best test error over
the epochs (the test set is biotorch's validation set for these data).

Two drivers:

- ``--driver loop``: biotorch's model and layers (``BioModule`` over
  ``models/le_net.py``'s ``LeNetMNIST``, ``init: "xavier"``; DFA through its
  backward hooks) in a plain torch loop. The images are read from the IDX
  files, resized once with torch's bilinear interpolation and rounded back
  to 8 bits (as skdfa's command resizes them; torchvision's ``Resize``, by
  PIL, also rounds between its two passes, which moves about one pixel in
  ten by one 8-bit step), then normalised; each epoch shuffles them with
  ``torch.randperm``.
- ``--driver trainer``: biotorch's own ``Benchmark`` (``benchmark/run.py``)
  from a configuration written like its CIFAR-10 ones
  (``benchmark_configs/cifar10/le_net/sgd/*.yaml``), with its trainer, its
  ``DataLoader`` and torchvision's MNIST / FashionMNIST datasets reading the
  IDX files. Needs torchvision, jsonschema and tensorboard besides
  ``pip install --no-deps biotorch==0.0.16``. Three things of biotorch's
  code that today's torch refuses are bridged, nothing of its training: the
  ``verbose`` it passes to ``MultiStepLR`` (gone in torch 2.13), the whole
  model its evaluation reloads (``torch.load`` defaults to weights only
  since 2.6), and torchvision's compiled operators, which the registry's
  CUDA-built wheels cannot load on torch's CPU build (its datasets and
  transforms do not use them).

Each epoch's test error is appended to ``OUT/errors.json``::

    python benchmarks/biotorch_lenet_reference.py --driver loop --data mnist \\
        --rule dfa --learning-rate 1e-4 --seed 1 --out runs/bt_loop_dfa_mnist_s1
"""

import argparse
import gzip
import json
import os
import runpy
import shutil
import sys
import time
from pathlib import Path

from skdfa._cli import _biotorch
from skdfa.datasets import load_idx
from skdfa.datasets._idx import FASHION_MNIST_HOME

DATA = {
    # name: (biotorch's dataset name, torchvision's folder, skdfa's name, default path)
    "mnist": ("mnist", "MNIST", "MNIST", "../shared/data/mnist"),
    "fashion-mnist": ("fashion_mnist", "FashionMNIST", "Fashion-MNIST", FASHION_MNIST_HOME),
}
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# skdfa's recipe (``skdfa/_cli/_biotorch.py``); torch's weight decay is the
# coefficient of the batch's mean loss, skdfa's alpha of its sum.
EPOCHS, BATCH_SIZE = _biotorch.PAPER_EPOCHS, _biotorch.BATCH_SIZE
MILESTONES = _biotorch.step_epochs(EPOCHS)
MOMENTUM = _biotorch.RECIPE["momentum"]
WEIGHT_DECAY = _biotorch.RECIPE["alpha"] / BATCH_SIZE
LAYER_OPTIONS = {"constrain_weights": False, "init": "xavier", "gradient_clip": False}


def loop_data(data, folder):
    """Train and test images as biotorch feeds them, and their labels."""
    import torch
    import torch.nn.functional as F

    mean, std = _biotorch.NORMALIZATION[DATA[data][2]]
    arrays = [load_idx(Path(folder) / f"{name}.gz") for name in IDX_FILES]
    out = []
    for images, labels in (arrays[:2], arrays[2:]):
        x = torch.tensor(images, dtype=torch.float32).unsqueeze(1)
        x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
        x = x.round().clamp(0, 255) / 255
        out += [(x - mean) / std, torch.tensor(labels, dtype=torch.long)]
    return out


def loop_model(rule):
    """biotorch's LeNetMNIST converted to ``rule``, as its benchmark builds it."""
    compare = runpy.run_path(str(Path(__file__).with_name("compare_biotorch.py")))
    return compare["biotorch_model"](rule, "lenet-mnist", options=LAYER_OPTIONS)


def run_loop(args, record):
    import warnings

    import torch
    import torch.nn.functional as F

    torch.manual_seed(args.seed)
    X_train, y_train, X_test, y_test = loop_data(args.data, args.data_path)
    model = loop_model(args.rule)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.learning_rate,
                                momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, MILESTONES, gamma=0.1)
    n_batches = len(X_train) // BATCH_SIZE  # drop_last, as biotorch's loader
    warnings.simplefilter("ignore")  # DFA's module backward hooks are deprecated
    for epoch in range(args.epochs):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(X_train))
        for batch in order[:n_batches * BATCH_SIZE].view(n_batches, BATCH_SIZE):
            inputs, targets = X_train[batch], y_train[batch]
            if args.rule == "dfa":
                outputs = model(inputs, targets, F.cross_entropy)
            else:
                outputs = model(inputs)
            loss = F.cross_entropy(outputs, targets)
            model.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
        model.eval()
        with torch.no_grad():
            predicted = torch.cat([model(x).argmax(1) for x in X_test.split(1000)])
        error = 100 * (predicted != y_test).double().mean().item()
        record(epoch, error, time.perf_counter() - start)


def trainer_config(args, out):
    """A configuration in the form of biotorch's CIFAR-10 LeNet ones."""
    dataset, folder, *_ = DATA[args.data]
    root = out / "data"
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in IDX_FILES:  # torchvision finds them and skips its download
        if not (raw / name).exists():
            with gzip.open(Path(args.data_path) / f"{name}.gz") as src, open(raw / name, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return {
        "experiment": {"name": args.rule, "output_dir": str(out / "trainer"), "seed": args.seed,
                       "deterministic": True},
        "data": {"dataset": dataset, "dataset_path": str(root), "target_size": 32,
                 "num_workers": 0},
        "model": {"architecture": "le_net_mnist",
                  "mode": {"type": args.rule, "options": LAYER_OPTIONS},
                  "pretrained": False, "loss_function": {"name": "cross_entropy"}},
        "training": {
            "hyperparameters": {"epochs": args.epochs, "batch_size": BATCH_SIZE},
            "optimizer": {"type": "SGD", "lr": args.learning_rate,
                          "weight_decay": WEIGHT_DECAY, "momentum": MOMENTUM},
            "lr_scheduler": {"type": "multistep_lr", "gamma": 0.1,
                             "milestones": list(MILESTONES)},
            "metrics": {"top_k": 5, "display_iterations": 100000, "layer_alignment": False,
                        "weight_ratio": False},
        },
        "infrastructure": {"gpus": -1},
        "evaluation": True,  # run() needs it
    }


def import_torchvision():
    """torchvision, also where its compiled operators cannot load.

    The registry's torchvision wheels are built against CUDA torch; on torch's
    CPU build its ``_C`` fails to load, and its import then stops at the two
    detection operators it registers fakes for. biotorch's pipeline uses only
    its datasets and transforms, so declaring those two is enough.
    """
    import torch

    try:
        import torchvision
    except RuntimeError:
        library = torch.library.Library("torchvision", "DEF")
        for name in ("nms", "qnms"):
            library.define(f"{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        for module in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[module]
        import torchvision
    return torchvision


def run_trainer(args, out, record):
    import yaml

    import torch

    import_torchvision()

    class MultiStepLR(torch.optim.lr_scheduler.MultiStepLR):
        """torch's, taking the ``verbose`` that biotorch passes (torch 2.13 dropped it)."""

        def __init__(self, *args, verbose=False, **kwargs):
            super().__init__(*args, **kwargs)

    torch.optim.lr_scheduler.MultiStepLR = MultiStepLR
    # The evaluation reloads the whole pickled model, which torch >= 2.6
    # refuses unless told to.
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    from biotorch.benchmark.run import Benchmark
    from biotorch.training import trainer

    path = out / "config.yaml"
    path.write_text(yaml.safe_dump(trainer_config(args, out), sort_keys=False))
    test = trainer.test
    epochs_done, epoch_start = [0], [time.perf_counter()]

    def test_and_record(*a, **kw):  # biotorch's validation pass, after every epoch
        acc, loss = test(*a, **kw)
        record(epochs_done[0], 100 - float(acc), time.perf_counter() - epoch_start[0])
        epochs_done[0] += 1
        epoch_start[0] = time.perf_counter()
        return acc, loss

    trainer.test = test_and_record
    Benchmark(str(path)).run()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--driver", choices=("loop", "trainer"), default="loop")
    parser.add_argument("--data", choices=sorted(DATA), default="mnist")
    parser.add_argument("--data-path", help="folder of the gzipped IDX files")
    parser.add_argument("--rule", default="dfa", help="biotorch's mode: dfa, fa, usf, ...")
    parser.add_argument("--learning-rate", type=float, required=True)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    args.data_path = args.data_path or DATA[args.data][3]
    try:
        import biotorch  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        print(f"needs torch and biotorch ({exc}); pip install --no-deps biotorch==0.0.16")
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = []

    def record(epoch, error, seconds):
        records.append({"epoch": epoch + 1, "test_error": error, "seconds": seconds})
        (out / "errors.json").write_text(json.dumps(
            {"driver": args.driver, "data": args.data, "rule": args.rule,
             "learning_rate": args.learning_rate, "seed": args.seed, "epochs": records},
            indent=1))
        best = min(records, key=lambda r: r["test_error"])
        print(f"epoch {epoch + 1}: test error {error:.2f}% ({seconds:.1f} s); "
              f"best {best['test_error']:.2f}% at epoch {best['epoch']}", flush=True)

    if args.driver == "loop":
        run_loop(args, record)
    else:
        run_trainer(args, out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
