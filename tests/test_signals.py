import os
import signal

import pytest

from rnnlab.signals import graceful_stop


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_first_signal_requests_a_stop(signum, code, capsys):
    calls = []
    with graceful_stop(lambda: calls.append(1)) as stop:
        os.kill(os.getpid(), signum)
    assert calls == [1] and stop.signum == signum and stop.exit_code == code
    assert "again to quit at once" in capsys.readouterr().err
    assert signal.getsignal(signum) is not None  # the previous handler is back


def test_second_ctrl_c_quits_at_once():
    with pytest.raises(KeyboardInterrupt), graceful_stop(lambda: None):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
