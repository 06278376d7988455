"""Speed benchmark: skdfa against scikit-learn's MLPClassifier on Fashion-MNIST.

The same as ``skdfa bench``; the code is ``skdfa/_cli/_bench*.py`` so that
the installed command has it. Examples::

    python benchmarks/bench_mlp.py --epochs 2
    python benchmarks/bench_mlp.py --hidden 800 --rules dfa,fa,bp --epochs 20
    python benchmarks/bench_mlp.py --quick --data synthetic
"""

import sys

from skdfa._cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
