"""The ``skdfa`` command, run in-process with tiny settings."""

import re
import subprocess
import sys

import numpy as np
import pytest

from skdfa._cli import _bench, _bench_measure, _bench_reference, _bench_report
from skdfa._cli import main

from .test_datasets import idx_bytes, write_mnist_folder

TINY = ["--epochs", "2", "--hidden", "8", "--quiet"]


def _table(stdout):
    """``{learner: (accuracy, seconds, params, angle)}`` parsed from the table."""
    rows = {}
    for line in stdout.splitlines():
        match = re.match(r"(.+?)\s+(0\.\d{4}|1\.0000)\s+([\d.]+)\s+(\d+)\s+(\S+)$", line)
        if match:
            name, accuracy, seconds, params, angle = match.groups()
            rows[name] = (float(accuracy), float(seconds), int(params), angle)
    return rows


def _one_error_line(stderr):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_demo_table_and_plots(tmp_path, capsys):
    status = main(["demo", *TINY, "--rules", "dfa,bp,mlp", "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert status == 0
    rows = _table(out)
    assert list(rows) == ["DFA", "BP", "MLPClassifier (sklearn)"]
    # 64 digits features, 8 hidden units, 10 classes.
    assert {params for _, _, params, _ in rows.values()} == {64 * 8 + 8 + 8 * 10 + 10}
    # BP and MLPClassifier get the same settings: after 2 epochs both are far
    # above chance (0.1; measured 0.518 and 0.536) and close to each other.
    bp, mlp = rows["BP"][0], rows["MLPClassifier (sklearn)"][0]
    assert bp > 0.3 and mlp > 0.3
    assert abs(bp - mlp) < 0.1
    assert float(rows["DFA"][3]) > 0 and float(rows["BP"][3]) == 0.0
    assert rows["MLPClassifier (sklearn)"][3] == "-"
    for name in ["training_history.png", "alignment.png"]:
        assert (tmp_path / "out" / name).read_bytes()[:4] == b"\x89PNG"


def test_demo_runs_every_rule(capsys):
    rules = ["sdfa", "usf", "frsf", "brsf", "kp", "dkp"]
    status = main(["demo", *TINY, "--rules", ",".join(rules), "--no-plots"])
    rows = _table(capsys.readouterr().out)
    assert status == 0
    assert list(rows) == ["sDFA", "uSF", "frSF", "brSF", "KP", "DKP"]
    assert all(0 < float(angle) < 180 for _, _, _, angle in rows.values())


def test_demo_rd_and_stacking(capsys):
    status = main(["demo", *TINY, "--rules", "rd,stacking", "--no-plots"])
    rows = _table(capsys.readouterr().out)
    assert status == 0
    assert list(rows) == ["RDClassifier (dfa)", "StackingDFA"]
    # The stacking counts its learners and its head.
    dense = 64 * 8 + 8 + 8 * 10 + 10
    head = 10 * 5 * 10 + 10
    assert rows["StackingDFA"][2] == 5 * dense + head


def test_demo_progress_unless_quiet(tmp_path, capsys):
    # Issue 21: the per-epoch tables only with --verbose.
    main(["demo", "--epochs", "2", "--hidden", "8", "--rules", "dfa", "--no-plots", "--verbose"])
    out = capsys.readouterr().out
    assert "[1/1] DFA: 2 epochs" in out
    assert re.search(r"^\s+2\s+[\d.]+", out, re.MULTILINE)  # the per-epoch table
    main(["demo", *TINY, "--rules", "dfa", "--no-plots"])
    assert "[1/1]" not in capsys.readouterr().out


def test_demo_without_matplotlib_still_prints_the_table(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    status = main(["demo", *TINY, "--rules", "dfa", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0
    assert "DFA" in _table(out)
    skipped = [line for line in out.splitlines() if "plots skipped" in line]
    assert len(skipped) == 1 and "pip install matplotlib" in skipped[0]
    assert not any(tmp_path.iterdir())


def test_compare_on_idx_folder(tmp_path, capsys):
    write_mnist_folder(tmp_path, n_train=40, n_test=10)
    status = main(["compare", "--data", str(tmp_path), *TINY, "--rules", "dfa,fa",
                   "--batch-size", "16", "--no-plots"])
    out = capsys.readouterr().out
    assert status == 0
    assert f"IDX files in {tmp_path}: 40 train / 10 test samples, 12 features" in out
    assert list(_table(out)) == ["DFA", "FA"]


def test_dropout_reaches_skdfa_learners_only(monkeypatch):
    from skdfa._cli import _compare as _cli

    made = {}
    original = _cli._make_learner

    def spy(key, args, *rest):
        made[key] = original(key, args, *rest)
        return made[key]

    monkeypatch.setattr(_cli, "_make_learner", spy)
    assert main(["compare", "--data", "digits", *TINY, "--rules", "dfa,mlp", "--n-train", "200",
                 "--dropout", "0.1,0.3", "--no-plots"]) == 0
    assert made["dfa"].dropout == (0.1, 0.3)
    assert not hasattr(made["mlp"], "dropout")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["compare", "--data", "{tmp}/absent"], "is not a folder of IDX files"),
        (["compare", "--data", "{tmp}"], "truncated"),
        (["bench", "--quick", "--data", "{tmp}"], "truncated"),
        (["compare", "--data", "fashion-mnist"], "apt-get install dataset-fashion-mnist"),
    ],
)
def test_data_errors_are_one_line(tmp_path, capsys, monkeypatch, argv, message):
    write_mnist_folder(tmp_path)
    # Replace the training labels by a truncated file.
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(12, np.uint8))[:-3])
    monkeypatch.setenv("SKDFA_FASHION_MNIST", str(tmp_path / "absent"))
    status = main([a.format(tmp=tmp_path) for a in argv])
    captured = capsys.readouterr()
    assert status == 1
    line = _one_error_line(captured.err)
    assert line.startswith("skdfa: error: ") and message in line


@pytest.mark.parametrize(
    "argv, message",
    [
        (["demo", "--bogus"], "unrecognized arguments: --bogus"),
        (["demo", "--rules", "dfa,magic"], "unknown learner(s) magic"),
        (["bench", "--rules", "mlp"], "unknown rule(s) mlp"),
        (["bench", "--hidden", "0"], "positive widths"),
        (["bench", "--net", "alexnet"], "unknown net(s) alexnet"),
        (["bench", "--net", "lenet", "--hidden", "32"], "--net times conv nets"),
        (["compare", "--epochs", "zero"], "expected a positive integer"),
        (["compare", "--dropout", "0.1,1.5"], "invalid dropout '0.1,1.5'"),
        (["fly"], "invalid choice: 'fly'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_usage_errors_are_one_line(capsys, argv, message):
    status = main(argv)
    assert status == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith("skdfa") and message in line and "--help" in line


def test_help_and_version(capsys):
    assert main(["bench", "--help"]) == 0
    assert "--quick" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("skdfa ")


def test_bench_quick_reports_ratios_and_targets(capsys):
    status = main(
        ["bench", "--quick", "--data", "synthetic", "--epochs", "2", "--quiet",
         "--devices", "numpy"]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert out.startswith("Benchmark on SYNTHETIC data")
    for arch in ["784-32-10 tanh", "784-32-32-32-10 tanh"]:
        assert arch in out
    assert "FLOPs per training sample" in out
    verdicts = re.findall(r"^  (MET |MISS|n/a ) ", out, re.MULTILINE)
    # DFA/BP, MLPClassifier/DFA and matmul share on both nets, which are not
    # the targets' nets; no accuracy target on 600 samples.
    assert verdicts == ["n/a "] * 6 and "accuracy >=" not in out
    assert "(multiply-adds allow 0.98)" in out  # 784-32-32-32-10
    assert "accuracy targets not evaluated: trained on 600 samples, --quick" in out
    assert "epoch 1/2" not in out  # --quiet


def test_bench_torch_rows_and_the_plain_pytorch_loop(capsys):
    pytest.importorskip("torch")
    status = main(
        ["bench", "--quick", "--data", "synthetic", "--epochs", "2", "--quiet",
         "--devices", "numpy,cpu", "--rules", "dfa", "--hidden", "16"]
    )
    out = capsys.readouterr().out
    assert status == 0
    table = out[out.index("784-16-10 tanh"):out.index("FLOPs per training sample")]
    names = [line[:22].strip() for line in table.splitlines()[3:] if line.strip()]
    assert names == [
        "sklearn MLPClassifier", "skdfa dfa", "skdfa dfa torch cpu", "PyTorch DFA loop cpu"
    ]
    # s/epoch: the first column after the learner's 22 characters.
    rows = {line[:22].strip(): line[22:].split() for line in table.splitlines()[3:]
            if line.strip()}
    skdfa_torch = float(rows["skdfa dfa torch cpu"][0])
    torch_loop = float(rows["PyTorch DFA loop cpu"][0])
    match = re.search(r"(MET |MISS)  skdfa DFA on torch CPU <= 1.0x the plain "
                      r"PyTorch DFA loop's epoch on 784-16-10: ([0-9.]+)x", out)
    assert match
    # The table rounds the times to milliseconds, so the printed ratio can only
    # be checked to lie between the ratios of the rounding interval's ends.
    half_ms = 5e-4
    low = (skdfa_torch - half_ms) / (torch_loop + half_ms)
    high = (skdfa_torch + half_ms) / max(torch_loop - half_ms, 1e-12)
    assert low - 0.005 <= float(match.group(2)) <= high + 0.005
    assert match.group(1) == ("MET " if float(match.group(2)) <= 1.0 else "MISS")


def test_learners_take_their_epochs_in_turn():
    pytest.importorskip("torch")
    data, _ = _bench.load_bench_data("synthetic", quick=True)
    lines = []
    runs = [_bench.bench_learner("dfa", (8,), data, 3),
            _bench.bench_learner("dfa", (8,), data, 3, device="cpu"),
            _bench_reference.torch_dfa_loop((8,), data, 3)]
    numpy_row, torch_row, loop_row = _bench.run_interleaved(runs, 3, lines.append)
    order = [re.search(r"784-8-10  (.*?) +epoch (\d)/3", line).groups() for line in lines]
    names = ["skdfa dfa", "skdfa dfa torch cpu", "PyTorch DFA loop cpu"]
    assert order == [(name, str(epoch)) for epoch in (1, 2, 3) for name in names]
    for row in (numpy_row, torch_row, loop_row):
        assert len(row.epoch_seconds) == 2 and 0 < row.accuracy <= 1
    # tracemalloc sees numpy allocations only: torch rows report no memory.
    assert numpy_row.peak_bytes > 4 * 784 * 8 and torch_row.peak_bytes == 0


def test_bench_effect_of_dropout_pairs_each_learner_with_its_dropout_twin(capsys):
    pytest.importorskip("torch")
    status = main(["bench", "--quick", "--data", "synthetic", "--epochs", "3", "--quiet",
                   "--device", "numpy,cpu", "--rules", "dfa", "--hidden", "8",
                   "--effect-of", "dropout", "--dropout", "0.2,0.4", "--batch-size", "50",
                   "--solver", "rmsprop", "--threads", "1"])
    out = capsys.readouterr().out
    assert status == 0
    assert out.startswith("Effect of dropout on SYNTHETIC data") and "rmsprop, batch 50" in out
    table = out[out.index("784-8-10 tanh"):].splitlines()
    assert table[1].split()[1:5] == ["no", "dropout", "dropout", "0.2/0.4"]
    rows = [line for line in table[3:] if line.startswith("skdfa")]
    assert [row[:26].strip() for row in rows] == ["skdfa dfa", "skdfa dfa torch cpu"]


def test_bench_effect_ratio_is_the_median_of_paired_epochs():
    lines = []
    pairs = _bench.run_effect(
        "dropout", data="synthetic", epochs=4, rules=("dfa",), architectures=[(8,)],
        quick=True, out=lines.append, progress=False, batch_size=60, solver="sgd",
    )
    ((base, other),) = pairs["784-8-10"]
    assert other.name == "skdfa dfa +dropout" and base.name == "skdfa dfa"
    assert len(base.epoch_seconds) == len(other.epoch_seconds) == 3
    ratio = np.median(np.array(other.epoch_seconds) / np.array(base.epoch_seconds))
    row = next(line for line in lines if line.startswith("skdfa dfa "))
    assert float(row.split()[-2].rstrip("x")) == pytest.approx(ratio, abs=5e-4)


def test_bench_per_batch_sync_twin_runs_its_epochs_with_the_engine_setting_on(monkeypatch):
    # The engine reads every batch's loss under the setting
    # (test_array_api.py::test_torch_fit_reads_from_the_device_per_epoch_not_per_batch);
    # here: the twin's epochs, and only they, run with it.
    pytest.importorskip("torch")
    from skdfa import _training

    switch = []
    train_epoch = _training._train_epoch
    monkeypatch.setattr(
        _training, "_train_epoch",
        lambda *a: switch.append(a[3].sync_every_batch) or train_epoch(*a),
    )
    pairs = _bench.run_effect(
        "per-batch-sync", data="synthetic", epochs=3, rules=("dfa",), architectures=[(8,)],
        quick=True, out=lambda line: None, progress=False, devices=("numpy", "cpu"),
    )
    ((base, other),) = pairs["784-8-10"]
    assert (base.device, other.device) == ("cpu", "cpu")
    assert other.name == "skdfa dfa torch cpu +sync/batch"
    assert switch == [False, True] * 3


def test_bench_effect_times_with_the_chosen_clock(monkeypatch):
    # --clock cpu: the process's CPU time, here a clock that ticks one second
    # per reading.
    ticks = iter(range(10**6))
    monkeypatch.setitem(_bench.CLOCKS, "cpu", lambda: float(next(ticks)))
    lines = []
    pairs = _bench.run_effect(
        "dropout", data="synthetic", epochs=3, rules=("dfa",), architectures=[(8,)],
        quick=True, out=lines.append, progress=False, clock="cpu",
    )
    ((base, other),) = pairs["784-8-10"]
    assert base.epoch_seconds == other.epoch_seconds == [1.0, 1.0]
    assert "interleaved, CPU time" in lines[0]
    with pytest.raises(_bench.CommandError, match="--clock cpu times numpy and torch CPU only"):
        _bench.run_effect("dropout", quick=True, devices=("cuda",), clock="cpu")


@pytest.mark.parametrize("argv, message", [
    (["--solver", "sgd"], "--solver only with --effect-of"),
    (["--clock", "cpu"], "--clock only with --effect-of"),
    (["--batch-size", "10", "--dropout", "0.1"], "--batch-size, --dropout only with --effect-of"),
    (["--effect-of", "per-batch-sync", "--dropout", "0.1"], "--dropout only with --effect-of dropout"),
    (["--effect-of", "per-batch-sync", "--device", "numpy"], "needs a torch device"),
])
def test_bench_effect_usage_errors(capsys, argv, message):
    assert main(["bench", "--quick", *argv]) == 2
    assert message in _one_error_line(capsys.readouterr().err)


def test_run_benchmark_numbers_are_consistent():
    report = _bench.run_benchmark(
        data="synthetic", epochs=2, rules=("dfa",), architectures=[(16,)],
        quick=True, out=lambda line: None, progress=False,
    )
    (arch,) = report["results"]
    assert arch == "784-16-10"
    mlp, dfa = report["results"][arch]
    assert (mlp.name, dfa.name) == ("sklearn MLPClassifier", "skdfa dfa")
    for row in (mlp, dfa):
        assert len(row.epoch_seconds) == 1 and row.seconds_per_epoch > 0
        assert row.peak_bytes > 4 * (784 * 16)  # at least the float32 weights
    n = _bench.QUICK_SAMPLES[0]
    assert dfa.gflops(n) == pytest.approx(
        2 * (2 * (784 * 16 + 16 * 10) + 10 * 16) * n / dfa.seconds_per_epoch / 1e9
    )
    assert report["matmul_gflops"][arch] > 0


DEEP_NET = [784, 1024, 1024, 1024, 1024, 10]


def _fake_learner(result, seconds, executed, threads_seen=None):
    """A bench learner whose epochs "take" ``seconds`` (none is timed): it
    records its name in ``executed``, and the thread pools it runs with."""
    from threadpoolctl import threadpool_info

    yield result
    for epoch, epoch_seconds in enumerate(seconds):
        executed.append(result.name)
        if threads_seen is not None:
            threads_seen.append({info["internal_api"]: info["num_threads"]
                                 for info in threadpool_info()})
        yield _bench_measure.record_epoch(result, epoch, len(seconds), epoch_seconds)


def _deep_net_learners(executed):
    BenchResult = _bench_measure.BenchResult
    # (learner, device): epoch seconds, the first not timed.
    times = {("mlp", "numpy"): [9, 7, 6, 6], ("dfa", "numpy"): [9, 3, 2, 2],
             ("bp", "numpy"): [9, 3, 3, 3], ("dfa", "cpu"): [9, 1, 1, 1],
             ("bp", "cpu"): [9, 2, 2, 2], ("torch-loop", "cpu"): [9, 2, 2, 2]}
    return [_fake_learner(BenchResult(learner, DEEP_NET, device=device), seconds, executed)
            for (learner, device), seconds in times.items()]


@pytest.mark.parametrize("reverse", [False, True])
def test_targets_come_from_their_learners_whatever_the_order(reverse):
    executed = []
    results = _bench_measure.run_interleaved(
        _deep_net_learners(executed), 4, threads=_bench_measure.LearnerThreads(1),
        reverse=reverse,
    )
    names = ["sklearn MLPClassifier", "skdfa dfa", "skdfa bp", "skdfa dfa torch cpu",
             "skdfa bp torch cpu", "PyTorch DFA loop cpu"]
    # Reversing changes which learner runs first in each round, not the rows.
    assert executed == (names[::-1] if reverse else names) * 4
    assert [row.name for row in results] == names
    # numpy DFA (2 s per epoch) at half this rate; torch's DFA is twice as fast.
    rate = 2 * _bench_measure.training_flops_per_sample(DEEP_NET, "dfa") * 1000 / 2 / 1e9
    targets = _bench_report.targets({"784-1024-1024-1024-1024-10": results},
                                    {"784-1024-1024-1024-1024-10": rate}, 1000, False,
                                    accuracy=False)
    verdicts = {description.split(" on 784")[0]: (value, passed)
                for description, value, passed in targets}
    assert verdicts == {
        "skdfa DFA on torch CPU <= 1.0x the plain PyTorch DFA loop's epoch": ("0.50x", True),
        "skdfa DFA <= 0.8x skdfa BP's epoch (numpy)": (
            "0.67 (multiply-adds allow 0.72)", True),
        "skdfa DFA <= 0.8x skdfa BP's epoch (torch cpu)": (
            "0.50 (multiply-adds allow 0.72)", True),
        "numpy DFA >= 2.0x faster per epoch than MLPClassifier": ("3.00x", True),
        "numpy DFA >= 45% of the matmul rate": ("50%", True),
    }


def test_only_the_targets_of_the_learners_that_ran_are_printed():
    executed = []
    numpy_only = _bench_measure.run_interleaved(
        _deep_net_learners(executed)[:2], 2, threads=_bench_measure.LearnerThreads(1)
    )
    targets = _bench_report.targets({"784-1024-1024-1024-1024-10": numpy_only},
                                    {"784-1024-1024-1024-1024-10": 1.0}, 1000, False,
                                    accuracy=False)
    assert [description.split(" on ")[0] for description, _, _ in targets] == [
        "numpy DFA >= 2.0x faster per epoch than MLPClassifier",
        "numpy DFA >= 45% of the matmul rate",
    ]
    # On another net they are shown, but not judged.
    small = [_bench_measure.BenchResult(learner, [784, 16, 10], [1.0])
             for learner in ("mlp", "dfa")]
    targets = _bench_report.targets({"784-16-10": small}, {"784-16-10": 1.0}, 1000, False,
                                    accuracy=False)
    assert [passed for _, _, passed in targets] == [None, None]
    lines = []
    _bench_report.print_targets(targets, lines.append)
    assert lines[1:] == ["Targets:", *(f"  n/a   {d}: {v}" for d, v, _ in targets)]


def test_every_learners_epochs_run_inside_the_same_thread_limits():
    from threadpoolctl import threadpool_info

    before = {info["internal_api"]: info["num_threads"] for info in threadpool_info()}
    n = max(before.values()) + 1  # not what the tests run with
    seen = []
    runs = [_fake_learner(_bench_measure.BenchResult(learner, [4, 2, 2]), [1, 1, 1], [], seen)
            for learner in ("mlp", "dfa")]
    results = _bench_measure.run_interleaved(runs, 3, threads=_bench_measure.LearnerThreads(n))
    assert len(seen) == 6 and all(set(pools.values()) == {n} for pools in seen)
    assert "openblas" in seen[0]
    # Each epoch then waited for idle threads; the limits are lifted after.
    assert all(len(row.idle_waits) == 3 for row in results)
    assert {info["internal_api"]: info["num_threads"] for info in threadpool_info()} == before


def test_bench_partial_fit_reports_the_fixed_cost_per_call_and_its_target(capsys):
    assert main(["bench", "--partial-fit", "--quick", "--data", "synthetic", "--rules", "dfa",
                 "--device", "numpy"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("partial_fit overhead on SYNTHETIC data") and "calls of 1 and 3" in out
    row = next(line for line in out.splitlines() if line.startswith("skdfa dfa "))
    small, large, batch, fixed = map(float, row.split()[2:])
    # Rounded to hundredths of a millisecond.
    assert batch == pytest.approx((large - small) / 2, abs=0.01)
    assert fixed == pytest.approx(small - batch, abs=0.02)
    target = re.search(r"^  (MET |MISS)  partial_fit costs <= 2 ms per call beyond its batches' "
                       r"work on a 64-64 net \(skdfa dfa on 784-64-64-10\): ([\d.]+) ms$",
                       out, re.MULTILINE)
    assert target and float(target.group(2)) == pytest.approx(fixed, abs=0.01)
    assert target.group(1) == ("MET " if float(target.group(2)) <= 2 else "MISS")
    assert main(["bench", "--partial-fit", "--reverse"]) == 2
    assert "--partial-fit times partial_fit calls alone" in capsys.readouterr().err


def test_bench_to_accuracy_reports_the_first_epoch_at_the_accuracy(tmp_path, monkeypatch):
    from skdfa._cli import _common
    from skdfa.plotting import rule_color

    figures = []
    new_figure = _common.new_figure
    monkeypatch.setattr(_common, "new_figure",
                        lambda **kwargs: figures.append(new_figure(**kwargs)) or figures[-1])
    lines = []
    table = _bench.run_to_accuracy(
        0.3, data="synthetic", epochs=3, rules=("dfa",), architectures=[(16,)], quick=True,
        out=lines.append, progress=False, learning_rates=(0.001, 0.01),
        plot=tmp_path / "to_accuracy.png",
    )
    assert (tmp_path / "to_accuracy.png").stat().st_size > 0
    rows = table["784-16-10"]
    assert [(rate, row.name) for rate, row in rows] == [
        (0.001, "sklearn MLPClassifier"), (0.01, "sklearn MLPClassifier"),
        (0.001, "skdfa dfa"), (0.01, "skdfa dfa")]
    printed = [line.split() for line in lines if line.startswith(("sklearn", "skdfa"))]
    for (rate, row), cells in zip(rows, printed):
        # Every epoch timed, the first included, and scored after it.
        assert len(row.all_seconds) == len(row.accuracies) == 3
        reached = next((epoch for epoch, acc in enumerate(row.accuracies, 1) if acc >= 0.3), None)
        # Two words of name, the rate, then the epochs and seconds.
        assert float(cells[2]) == rate
        epochs, seconds = cells[3], cells[4]
        if reached is None:
            assert (epochs, seconds) == ("-", "-")
        else:
            assert int(epochs) == reached
            assert float(seconds) == pytest.approx(sum(row.all_seconds[:reached]), abs=0.006)
        assert float(cells[5]) == pytest.approx(row.accuracies[-1], abs=5e-5)
    # Each learner in its colour of every skdfa figure: MLPClassifier black.
    (figure,) = figures
    colors = {line.get_label(): line.get_color() for line in figure.axes[0].get_lines()}
    assert colors["sklearn MLPClassifier, lr 0.01"] == rule_color("sklearn") == "#000000"
    assert colors["skdfa dfa, lr 0.01"] == rule_color("dfa")


@pytest.mark.parametrize("argv, message", [
    (["--lr", "0.1"], "--lr and --plot only with --to-accuracy"),
    (["--plot", "a.png"], "--lr and --plot only with --to-accuracy"),
    (["--to-accuracy", "0.8", "--partial-fit"], "--to-accuracy trains at the speed table's"),
    (["--to-accuracy", "1.5"], "expected an accuracy in (0, 1]"),
])
def test_bench_to_accuracy_usage_errors(capsys, argv, message):
    assert main(["bench", "--quick", *argv]) == 2
    assert message in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("load, threads, note", [
    (1.5, 2, None), (5.0, 2, "or run with --threads 1."), (5.0, 1, "from a quiet machine."),
])
def test_the_bench_says_when_other_jobs_ran(monkeypatch, load, threads, note):
    monkeypatch.setattr(_bench_report, "_load_average", lambda: load)
    monkeypatch.setattr(_bench_report, "available_cores", lambda: 2)
    lines = []
    _bench_report.print_threads(_bench_measure.LearnerThreads(threads), [], lines.append)
    text = " ".join(lines)
    assert text.startswith(f"Threads: every learner's epochs ran with {threads} BLAS/OpenMP")
    assert ("busy: load average 5.0 on 2 cores" in text) == (note is not None)
    assert note is None or text.endswith(note)


class _SpinningProcess:
    """A clock whose process spins at full speed for ``busy`` seconds after
    ``start``, then idles: ``perf_counter``, ``process_time`` and ``sleep``."""

    def __init__(self, busy):
        self.now = self.cpu = 0.0
        self.busy = busy

    def perf_counter(self):
        return self.now

    def process_time(self):
        return self.cpu

    def sleep(self, seconds):
        self.cpu += max(0.0, min(self.now + seconds, self.busy) - self.now)
        self.now += seconds


@pytest.mark.parametrize("busy, waited", [(0.0, 0.01), (0.105, 0.12), (5.0, 1.0)])
def test_the_bench_waits_for_its_threads_to_go_idle(monkeypatch, busy, waited):
    # Windows of 10 ms until one passes with under 1 ms of CPU time; 1 s at most.
    process = _SpinningProcess(busy)
    monkeypatch.setattr(_bench_measure, "time", process)
    assert _bench_measure.wait_until_idle() == pytest.approx(waited)


def test_dropout_target_on_torch_cpu_at_batch_64():
    BenchResult = _bench_measure.BenchResult
    base = BenchResult("dfa", [784, 800, 800, 10], [1.0, 2.0], device="cpu")
    dropout = BenchResult("dfa", [784, 800, 800, 10], [1.05, 2.4], device="cpu",
                          variant="+dropout")
    numpy_pair = (BenchResult("dfa", [784, 800, 800, 10], [1.0]),
                  BenchResult("dfa", [784, 800, 800, 10], [1.5], variant="+dropout"))
    pairs = {"784-800-800-10": [numpy_pair, (base, dropout)]}
    # The median of the paired ratios (1.05, 1.2); numpy's pair has no target.
    ((description, value, passed),) = _bench_report.effect_targets("dropout", pairs, 64)
    assert "skdfa dfa torch cpu's epoch at batch 64" in description
    assert (value, passed) == ("+12.5%", False)
    ((_, _, passed),) = _bench_report.effect_targets("dropout", pairs, 200)
    assert passed is None


def test_training_flops_count_bp_and_fa_propagate_through_every_upper_layer():
    units = [10, 7, 5, 3]
    forward = 10 * 7 + 7 * 5 + 5 * 3
    flops = _bench_measure.training_flops_per_sample
    assert flops(units, "bp") == 2 * (2 * forward + 7 * 5 + 5 * 3)
    assert flops(units, "fa") == 2 * (2 * forward + 7 * 5 + 5 * 3)
    assert flops(units, "drtp") == 2 * (2 * forward + 3 * (7 + 5))
    for rule in ["usf", "frsf", "brsf", "kp"]:
        assert flops(units, rule) == 2 * (2 * forward + 7 * 5 + 5 * 3)
    assert flops(units, "sdfa") == 2 * (2 * forward + 3 * (7 + 5))
    # DKP also computes its feedback's gradient e.T @ h_l.
    assert flops(units, "dkp") == 2 * (2 * forward + 2 * 3 * (7 + 5))


def _tiny_conv_layers(rule="dfa"):
    # conv (1,7,7) -> 2 maps of 3x3 -> (2,5,5), max pool 2 -> (2,2,2), conv of
    # 2x2 -> (3,1,1), dense 3 -> 4, dense 4 -> 3 classes.
    from skdfa import ConvDFAClassifier

    est = ConvDFAClassifier(conv_layers=((2, 3), (3, 2)), pool_size=2,
                            hidden_layer_sizes=(4,), rule=rule)
    return est, est._make_layers([49, 4, 3])


def test_conv_training_flops_match_a_hand_count():
    _, layers = _tiny_conv_layers()
    forward = 2 * 5 * 5 * (1 * 3 * 3) + 3 * 1 * 1 * (2 * 2 * 2) + 3 * 4 + 4 * 3
    assert [layer.forward_macs for layer in layers] == [450, 0, 24, 12, 12]
    flops = _bench_measure.training_flops_per_sample
    # BP: input gradients through the second conv and both dense layers, none
    # through the first conv or the pooling.
    assert flops(layers, "bp") == 2 * (2 * forward + 24 + 12 + 12)
    assert flops(layers, "fa") == flops(layers, "bp")
    # DFA's "kernel" form: e (3 outputs) onto the pooled map under the second
    # conv (its constant-map projection D, 2*2*2 wide), the second conv's
    # output (3) and the dense layer's (4).
    assert flops(layers, "dfa") == 2 * (2 * forward + 3 * (8 + 3 + 4))
    # DKP ("map" form): onto each layer's own output, and its feedback's gradient.
    assert flops(layers, "dkp") == 2 * (2 * forward + 2 * 3 * (2 * 5 * 5 + 3 + 4))
    assert _bench_report.macs_ratio(layers) == pytest.approx(
        (2 * forward + 45) / (2 * forward + 48)
    )


def test_conv_dfa_count_is_the_width_of_the_feedback_the_engine_projects_through():
    est, layers = _tiny_conv_layers()
    rng = np.random.RandomState(0)
    est.set_params(max_iter=1).fit(rng.rand(20, 49).astype(np.float32), np.arange(20) % 3)
    (feedback,) = est._fit_state.network.rule_state.fixed
    forward = sum(layer.forward_macs for layer in layers)
    n_outputs, width = feedback.shape
    assert _bench_measure.training_flops_per_sample(layers, "dfa") == 2 * (
        2 * forward + n_outputs * width
    )


def test_conv_matmul_shapes_are_the_im2col_products():
    _, layers = _tiny_conv_layers()
    assert _bench_measure.product_shapes(layers, 10) == [
        (10 * 25, 9, 2), (10 * 1, 8, 3), (10, 3, 4), (10, 4, 3)
    ]
    assert _bench_measure.product_shapes([5, 4, 3], 10) == [(10, 5, 4), (10, 4, 3)]


def test_bench_conv_images_are_padded_by_two_pixels_a_side():
    X = np.arange(1, 785, dtype=np.float32).reshape(1, 784)
    padded, _, _, _ = _bench.as_32x32_images((X, X, None, None))
    images = padded.reshape(32, 32)
    np.testing.assert_array_equal(images[2:30, 2:30], X.reshape(28, 28))
    assert images.sum() == X.sum()  # the margin is zeros
    with pytest.raises(_bench.CommandError, match="square images"):
        _bench.as_32x32_images((X[:, :700], X, None, None))


def test_bench_conv_nets_time_dfa_and_bp_against_the_conv_rate(capsys):
    status = main(["bench", "--quick", "--data", "synthetic", "--epochs", "2", "--quiet",
                   "--devices", "numpy", "--net", "lenet"])
    out = capsys.readouterr().out
    assert status == 0
    assert "padded to 32x32: 600 train / 200 test samples, 1024 features" in out
    assert "lenet conv 6,16,120 (5x5), dense 84, 1x32x32->10 relu" in out
    rows = re.findall(r"^skdfa (dfa|bp) .*$", out, re.MULTILINE)
    assert rows == ["dfa", "bp"] and "sklearn" not in out and "PyTorch" not in out
    assert "im2col" in out
    # LeNet: forward 416520 multiply-adds; bp 298920 more, dfa 10*(1176+400+120+84).
    assert " 2.26 " in re.search(r"^skdfa bp .*$", out, re.MULTILINE).group()
    assert " 1.70 " in re.search(r"^skdfa dfa .*$", out, re.MULTILINE).group()
    verdicts = re.findall(r"^  (MET |MISS|n/a ) .*$", out, re.MULTILINE)
    assert verdicts == ["n/a "] and "(multiply-adds allow 0.75)" in out
    assert "accuracy" not in out.split("Targets:")[1]


def test_python_dash_m_entry_point(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "skdfa", "compare", "--data", str(tmp_path / "absent")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    assert _one_error_line(result.stderr).startswith("skdfa: error: ")


def test_failed_fit_is_one_line(capsys):
    # A huge learning rate makes the loss non-finite; 50 samples are too few
    # for a validation split (whose best epoch would be kept instead).
    status = main(["demo", *TINY, "--rules", "bp", "--lr", "1e38", "--n-train", "50",
                   "--batch-size", "10", "--no-plots"])
    captured = capsys.readouterr()
    assert status == 1
    assert "too few training samples for a validation split" in captured.out
    line = _one_error_line(captured.err)
    assert line.startswith("skdfa: error: BP: Training diverged")


def test_compare_mnist_reads_the_fetchers_cache(tmp_path, capsys, monkeypatch):
    # Files put in the cache by hand, as fetch_mnist's offline error says:
    # no download is attempted.
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path))
    (tmp_path / "mnist").mkdir()
    write_mnist_folder(tmp_path / "mnist", n_train=40, n_test=10)
    status = main(["compare", "--data", "mnist", *TINY, "--rules", "dfa",
                   "--batch-size", "16", "--no-plots"])
    out = capsys.readouterr().out
    assert status == 0
    assert "MNIST: 40 train / 10 test samples, 12 features" in out
    assert list(_table(out)) == ["DFA"]


@pytest.mark.parametrize("out", ["{tmp}/file", "{tmp}/file/plots"])
def test_bad_output_folder_is_one_line_before_any_training(tmp_path, capsys, out):
    (tmp_path / "file").write_text("not a folder")
    status = main(["demo", *TINY, "--rules", "dfa", "--out", out.format(tmp=tmp_path)])
    captured = capsys.readouterr()
    assert status == 1
    assert captured.out == ""  # nothing trained
    line = _one_error_line(captured.err)
    assert line.startswith("skdfa: error: --out ") and "folder" in line


def test_ctrl_c_exits_with_130_and_one_line(capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("skdfa._cli._compare.train_learners", interrupted)
    assert main(["demo", *TINY, "--rules", "dfa", "--no-plots"]) == 130
    assert _one_error_line(capsys.readouterr().err) == "skdfa: interrupted"


# -- epoch-by-epoch fits, progress, devices (issue 20) ------------------------------

EPOCHS = 5


@pytest.mark.parametrize("settings", [
    # the paper's recipe: RMSprop, sigmoid outputs, zero start, dropout's stream
    dict(hidden_layer_sizes=(16, 16), solver="rmsprop", dropout=(0.1, 0.5), weight_init="zeros",
         output_activation="sigmoid"),
    dict(hidden_layer_sizes=(16,), solver="adam", rule="bp"),
    # a learning-rate schedule that reads the sample count t_
    dict(hidden_layer_sizes=(16,), solver="sgd", learning_rate="invscaling", momentum=0.5),
    # feedback redrawn every batch (its own stream) and learnt feedback
    dict(hidden_layer_sizes=(16,), rule="brsf"),
    dict(hidden_layer_sizes=(16, 16), rule="dkp", track_alignment=3),
])
def test_fit_epochs_gives_the_model_of_one_fit_across_pickles(settings):
    import pickle

    from sklearn.datasets import load_digits

    from skdfa import DFAClassifier
    from skdfa._cli._common import fit_epochs, quietly

    X, y = load_digits(return_X_y=True)
    X = (X[:400] / 16).astype(np.float32)
    y = y[:400]
    common = dict(max_iter=EPOCHS, tol=0.0, n_iter_no_change=EPOCHS, random_state=0,
                  batch_size=64, **settings)
    with quietly():
        whole = DFAClassifier(**common).fit(X, y)
    est, epochs_seen = DFAClassifier(**common), []

    def after_epoch(est):
        epochs_seen.append(len(est.loss_curve_))

    for stop in (2, EPOCHS):  # a checkpoint after epoch 2, loaded again
        est = fit_epochs(est, X, y, stop, after_epoch=after_epoch)
        est = pickle.loads(pickle.dumps(est))
    assert epochs_seen == [1, 2, 3, 4, 5]
    for a, b in zip(whole.coefs_ + whole.intercepts_, est.coefs_ + est.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert est.loss_curve_ == whole.loss_curve_ and est.t_ == whole.t_
    np.testing.assert_array_equal(est.alignment_, whole.alignment_)
    assert (est.max_iter, est.warm_start) == (EPOCHS, False)  # as given


@pytest.mark.parametrize("settings, message", [
    (dict(early_stopping=True), "early_stopping=False"),
    (dict(n_iter_no_change=2), "n_iter_no_change >= epochs"),
])
def test_fit_epochs_refuses_settings_a_single_fit_treats_otherwise(settings, message):
    from skdfa import DFAClassifier
    from skdfa._cli._common import fit_epochs

    X, y = np.random.default_rng(0).random((40, 3)), np.arange(40) % 2
    with pytest.raises(ValueError, match=message):
        fit_epochs(DFAClassifier(**settings), X, y, 5)


def test_ctrl_c_during_an_epoch_keeps_the_last_finished_one(monkeypatch):
    """The estimators catch a Ctrl-C in their epoch loop, keep the last
    finished epoch and return: fit_epochs notices the Ctrl-C (its own SIGINT
    handler), hands that state to on_interrupt, then raises."""
    import signal

    from skdfa import DFAClassifier
    from skdfa._cli._common import fit_epochs

    original_fit = DFAClassifier.fit

    def fit_interrupted_in_epoch_4(self, X, y):
        if len(getattr(self, "loss_curve_", ())) == 3:
            try:
                signal.raise_signal(signal.SIGINT)
            except KeyboardInterrupt:
                return self  # what the engine does
        return original_fit(self, X, y)

    monkeypatch.setattr(DFAClassifier, "fit", fit_interrupted_in_epoch_4)
    # Whatever handled SIGINT before (SIG_IGN under nohup or a background job).
    before = signal.getsignal(signal.SIGINT)
    X, y = np.random.default_rng(0).random((40, 3)), np.arange(40) % 2
    est = DFAClassifier(hidden_layer_sizes=(4,), n_iter_no_change=5, tol=0, random_state=0)
    saved, seen = [], []
    with pytest.raises(KeyboardInterrupt):
        fit_epochs(est, X, y, 5, after_epoch=lambda e: seen.append(len(e.loss_curve_)),
                   on_interrupt=lambda e: saved.append(len(e.loss_curve_)))
    assert seen == [1, 2, 3] and saved == [3]
    # The previous handler is back afterwards.
    assert signal.getsignal(signal.SIGINT) is before


def test_progress_bar_with_tqdm_and_lines_without(capsys, monkeypatch):
    from skdfa._cli import _progress

    tqdm = pytest.importorskip("tqdm")
    bar = _progress.EpochProgress("2x800 tanh, DFA", 300, start=100, style="bar")
    for epoch in range(101, 104):
        bar.update(epoch, 0.5)
    bar.close()
    err = capsys.readouterr().err
    assert "2x800 tanh, DFA" in err and "103/300" in err and "loss 0.5" in err
    # On a terminal, tqdm's bar; without tqdm, or for a pipe, lines.
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert _progress.choose_style(quiet=False, in_process=True) == "bar"
    assert _progress.choose_style(quiet=False, in_process=False) == "lines"
    assert _progress.choose_style(quiet=True, in_process=True) is None
    monkeypatch.setitem(__import__("sys").modules, "tqdm", None)
    assert _progress.choose_style(quiet=False, in_process=True) == "lines"
    del tqdm


def test_progress_lines_every_few_epochs_with_time_left(monkeypatch):
    from skdfa._cli import _progress

    now = [0.0]
    monkeypatch.setattr(_progress.time, "perf_counter", lambda: now[0])
    lines = []
    progress = _progress.EpochProgress("1x800 tanh, BP", 300, start=20, out=lines.append)
    for epoch in range(21, 61):
        now[0] += 5  # every epoch takes 5 s
        progress.update(epoch, 0.25)
    # The first epoch of the run, then every 15th (300 / 20).
    assert [line.split("epoch ")[1].split("/")[0] for line in lines] == ["21", "30", "45", "60"]
    assert lines[-1] == ("  1x800 tanh, BP: epoch 60/300, loss 0.25, 5.00 s/epoch, "
                         "20 min 00 s left")


def test_compare_on_a_torch_device(capsys):
    pytest.importorskip("torch")
    status = main(["compare", "--data", "digits", *TINY, "--rules", "dfa,mlp",
                   "--device", "cpu", "--no-plots"])
    out = capsys.readouterr().out
    assert status == 0
    assert "skdfa on torch cpu" in out
    assert list(_table(out)) == ["DFA", "MLPClassifier (sklearn)"]


def test_torch_device_without_scipy_array_api_is_one_line(capsys, monkeypatch):
    monkeypatch.delenv("SCIPY_ARRAY_API")
    assert main(["compare", "--data", "digits", *TINY, "--device", "cpu"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "SCIPY_ARRAY_API=1" in line


def test_the_command_sets_scipy_array_api_itself(tmp_path):
    pytest.importorskip("torch")
    import os

    env = {k: v for k, v in os.environ.items() if k != "SCIPY_ARRAY_API"}
    result = subprocess.run(
        [sys.executable, "-m", "skdfa", "compare", "--data", "digits", *TINY,
         "--rules", "dfa", "--device", "cpu", "--no-plots"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "skdfa on torch cpu" in result.stdout and "DFA" in _table(result.stdout)


@pytest.mark.parametrize("argv, message", [
    (["compare", "--device", "tpu"], "unknown device(s) tpu"),
    (["reproduce", "nokland2016", "--device", "cpu,cuda"], "expected one device"),
    (["reproduce", "nokland2016", "--checkpoint-every", "0"], "expected a positive integer"),
])
def test_device_and_checkpoint_usage_errors(capsys, argv, message):
    assert main(argv) == 2
    assert message in _one_error_line(capsys.readouterr().err)


def test_bench_device_is_one_spelling_with_the_old_one_kept(capsys):
    from skdfa._cli import build_parser

    parser = build_parser()
    for flag in ["--device", "--devices"]:
        args = parser.parse_args(["bench", flag, "numpy,cpu", "--n-train", "10"])
        assert args.devices == ("numpy", "cpu") and args.train_samples == 10


def test_cli_reference_documents_every_option_of_every_command():
    import argparse
    from pathlib import Path

    from skdfa._cli import build_parser

    page = (Path(__file__).resolve().parent.parent / "docs" / "cli.rst").read_text()
    parts = re.split(r"^``skdfa (\w+)``\n=+\n", page, flags=re.M)
    sections = dict(zip(parts[1::2], parts[2::2]))
    commands = next(a for a in build_parser()._actions
                    if isinstance(a, argparse._SubParsersAction)).choices
    assert list(sections) == list(commands)
    for name, parser in commands.items():
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            option = action.option_strings[0] if action.option_strings else action.dest
            assert f"``{option}" in sections[name], (name, option)
    assert "needs torch" in page


# -- a user's learning rule on the command line (issue 18) -------------------------

from skdfa.rules import DirectFeedbackAlignment  # noqa: E402


class HalfDFA(DirectFeedbackAlignment):
    """DFA with its hidden error signals halved: a rule defined outside skdfa,
    given to the command as ``tests.test_cli:HalfDFA``."""

    name = "half_dfa"
    label = "half DFA"
    color = "#123456"

    def hidden_deltas(self, ctx, state):
        deltas = super().hidden_deltas(ctx, state)
        for delta in deltas:
            if delta is not None:
                delta *= 0.5
        return deltas


class InterruptingDFA(DirectFeedbackAlignment):
    """DFA that presses Ctrl-C in the third batch of the fourth epoch (of
    ``n_batches`` batches an epoch), from inside the estimator's epoch loop."""

    name = "interrupting_dfa"
    calls = 0

    def __init__(self, n_batches=1):
        self.n_batches = n_batches

    def hidden_deltas(self, ctx, state):
        import signal

        type(self).calls += 1
        if type(self).calls == 3 * self.n_batches + 3:
            signal.raise_signal(signal.SIGINT)
        return super().hidden_deltas(ctx, state)


USER_RULE = "tests.test_cli:HalfDFA"


def test_compare_trains_a_users_rule_with_its_label_and_colour(tmp_path, capsys, monkeypatch):
    from skdfa._cli import _common

    figures = []
    new_figure = _common.new_figure

    def kept(**kwargs):
        figures.append(new_figure(**kwargs))
        return figures[-1]

    monkeypatch.setattr(_common, "new_figure", kept)
    status = main(["compare", "--data", "digits", *TINY, "--rules", f"dfa,{USER_RULE}",
                   "--out", str(tmp_path)])
    rows = _table(capsys.readouterr().out)
    assert status == 0
    assert list(rows) == ["DFA", "half DFA"]
    assert 0 < float(rows["half DFA"][3]) < 180  # its alignment was measured
    for figure in figures:  # the training history, the alignment
        ax = figure.axes[0]
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert any("half DFA" in label for label in labels)
        lines = {line.get_color(): line.get_ydata() for line in ax.get_lines()}
        assert "#123456" in lines and "#ff7f0e" in lines  # its colour, DFA's
        # Halved deltas from the same start: another training.
        assert not np.array_equal(lines["#123456"], lines["#ff7f0e"])


@pytest.fixture
def digits_idx_folder(tmp_path):
    from sklearn.datasets import load_digits

    from .test_datasets import write_idx

    X, y = load_digits(return_X_y=True)
    images = (X.reshape(-1, 8, 8) * 15).astype(np.uint8)
    for prefix, part in [("train", slice(0, 1400)), ("t10k", slice(1400, None))]:
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", images[part])
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", y[part].astype(np.uint8))
    return tmp_path


def test_bench_and_reproduce_take_a_users_rule(digits_idx_folder, capsys):
    status = main(["bench", "--quick", "--data", "synthetic", "--epochs", "2", "--quiet",
                   "--device", "numpy", "--rules", f"dfa,{USER_RULE}", "--hidden", "16"])
    out = capsys.readouterr().out
    assert status == 0
    assert "skdfa half_dfa" in out and "skdfa dfa" in out
    status = main(["reproduce", "nokland2016", "--data", str(digits_idx_folder),
                   "--epochs", "1", "--n-train", "100", "--rows", "1x800",
                   "--rules", f"dfa,{USER_RULE}"])
    out = capsys.readouterr().out
    assert status == 0
    header = next(line for line in out.splitlines() if line.startswith("test error"))
    assert header.split()[-3:] == ["DFA", "half", "DFA"]
    assert "1x800 tanh, half DFA: test error" in out


@pytest.mark.parametrize("spec, message", [
    ("tests.test_cli:Nothing", "cannot import the learning rule 'tests.test_cli:Nothing'"),
    ("no_such_module:Rule", "cannot import the learning rule 'no_such_module:Rule'"),
    ("tests.test_cli:TINY", "tests.test_cli:TINY is neither a skdfa.rules.LearningRule subclass nor an instance of one: it is a list"),
])
def test_a_bad_users_rule_is_a_usage_error(capsys, spec, message):
    assert main(["compare", "--rules", f"dfa,{spec}"]) == 2
    assert message in _one_error_line(capsys.readouterr().err)


def test_ctrl_c_inside_the_estimators_epoch_loop(capsys):
    """A real Ctrl-C in an epoch: the estimator keeps its last finished epoch,
    fit_epochs saves it (on_interrupt) and stops."""
    from sklearn.datasets import load_digits

    from skdfa import DFAClassifier
    from skdfa._cli._common import fit_epochs

    X, y = load_digits(return_X_y=True)
    X, y = (X[:200] / 16).astype(np.float32), y[:200]
    InterruptingDFA.calls = 0
    est = DFAClassifier((8,), rule=InterruptingDFA(n_batches=4), batch_size=50,
                        n_iter_no_change=6, tol=0, random_state=0)
    saved = []
    with pytest.warns(UserWarning, match="interrupted"), pytest.raises(KeyboardInterrupt):
        fit_epochs(est, X, y, 6, on_interrupt=lambda e: saved.append(len(e.loss_curve_)))
    assert saved == [3] and len(est.loss_curve_) == 3
    # The state kept is the end of epoch 3: continuing gives the model of one fit.
    InterruptingDFA.calls = -10**9
    fit_epochs(est, X, y, 6)
    whole = DFAClassifier((8,), rule=InterruptingDFA(n_batches=4), batch_size=50, max_iter=6,
                          n_iter_no_change=6, tol=0, random_state=0)
    with pytest.warns(Warning):
        whole.fit(X, y)
    assert est.loss_curve_ == whole.loss_curve_
    for a, b in zip(est.coefs_, whole.coefs_):
        np.testing.assert_array_equal(a, b)


def test_plots_leave_matplotlibs_backend_and_pyplot_alone(tmp_path, capsys):
    matplotlib = pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    backend, figures = matplotlib.get_backend(), plt.get_fignums()
    assert main(["demo", *TINY, "--rules", "dfa,bp", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert (tmp_path / "alignment.png").is_file()
    # Figures are drawn on matplotlib's Figure and saved: no backend switch,
    # no pyplot figure opened (or left open).
    assert matplotlib.get_backend() == backend and plt.get_fignums() == figures
