import signal
import sys


def _early_interrupt(signum, frame):
    """Ctrl-C while the CLI is still being imported: nothing has started, so
    leave quietly with 130 rather than a KeyboardInterrupt traceback."""
    raise SystemExit(130)


# the marker cli.main() looks for (getattr) to know it may replace this handler
setattr(_early_interrupt, "urunix_early", True)
if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _early_interrupt)

from .cli import main  # noqa: E402

sys.exit(main())
