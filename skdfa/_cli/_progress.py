"""Progress of a long fit: epoch, loss and time left.

On a terminal, with tqdm installed (``pip install -e ".[progress]"``), a
progress bar; otherwise (no tqdm, output to a file or a pipe, cells running
in other processes) a plain line every few epochs, which stays readable in a
log.
"""

import sys
import time


def format_duration(seconds):
    """``"1 h 02 min"``, ``"3 min 05 s"`` or ``"42 s"``.

    Examples
    --------
    >>> from skdfa._cli._progress import format_duration
    >>> format_duration(3725), format_duration(185), format_duration(41.6)
    ('1 h 02 min', '3 min 05 s', '42 s')
    """
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def choose_style(quiet, in_process):
    """``None`` (quiet), ``"bar"`` (tqdm on a terminal, in this process) or
    ``"lines"``."""
    if quiet:
        return None
    if in_process and sys.stderr.isatty():
        try:
            import tqdm  # noqa: F401
        except ImportError:
            return "lines"
        return "bar"
    return "lines"


class EpochProgress:
    """Report the epochs of one fit as they finish.

    Parameters
    ----------
    title : str
        What trains, e.g. ``"2x800 tanh, DFA"``.
    total : int
        Epochs in all.
    start : int, default=0
        Epochs already done (a resumed fit); the time left is estimated
        from the epochs of this run only.
    style : {"bar", "lines"}, default="lines"
        A tqdm bar (on ``sys.stderr``), or a line to ``out`` after the
        first epoch, every ``every`` epochs and after the last one.
    every : int, default=None
        Epochs between lines; ``None`` is a twentieth of ``total``.
    out : callable, default=None
        Receives the lines; ``None`` prints them at once (flushed: a cell in
        another process writes to the terminal through a pipe).
    """

    def __init__(self, title, total, *, start=0, style="lines", every=None, out=None):
        self.title, self.total, self.start = title, total, start
        self.every = every or max(1, total // 20)
        self.out = out or (lambda line: print(line, flush=True))
        self._began = time.perf_counter()
        self._bar = None
        if style == "bar":
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=start, desc=title, unit="epoch",
                             dynamic_ncols=True)

    def update(self, epoch, loss):
        """Epoch ``epoch`` (counted from 1) finished with training loss ``loss``."""
        if self._bar is not None:
            self._bar.set_postfix_str(f"loss {loss:.4g}", refresh=False)
            self._bar.update(epoch - self._bar.n)
            return
        if epoch != self.start + 1 and epoch % self.every and epoch != self.total:
            return
        per_epoch = (time.perf_counter() - self._began) / (epoch - self.start)
        left = format_duration(per_epoch * (self.total - epoch))
        self.out(f"  {self.title}: epoch {epoch}/{self.total}, loss {loss:.4g}, "
                 f"{per_epoch:.2f} s/epoch, {left} left")

    def close(self):
        if self._bar is not None:
            self._bar.close()
