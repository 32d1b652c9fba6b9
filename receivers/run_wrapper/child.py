"""Running the child: a pty or pipes, byte-exact pass-through, signals, the exit code.

With a terminal on the wrapper's stdout the child's stdout *and* stderr get one pty (so it
keeps colours and line buffering; the two streams are then merged, as on a terminal), else two
pipes (so ``gasoline-run cmd | tee out.log`` works and stderr stays stderr). stdin is always
inherited untouched.

The child stays in the wrapper's process group, so it stays in the terminal's foreground group:
Ctrl-C and keyboard input reach it directly, exactly as without the wrapper. (The pty is
therefore not the child's controlling terminal, and the child is not a session leader.) A
signal the terminal sent (``si_code == SI_KERNEL``) has already reached the child and is not
forwarded again; SIGINT, SIGTERM and SIGHUP sent to the wrapper by ``kill`` are forwarded to
the child. The wrapper blocks these signals in all its threads and takes them with
``sigwaitinfo`` in a thread of its own; the child starts with an empty signal mask.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import signal
import sys
import termios
import threading
from collections.abc import Callable, Mapping, Sequence

__all__ = ["FORWARDED_SIGNALS", "block_signals", "run_child"]

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_HANDLED = {*FORWARDED_SIGNALS, signal.SIGWINCH}
_SI_KERNEL = 0x80  # siginfo si_code of a signal the kernel (the tty driver) generated
_READ_SIZE = 1 << 20
_PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_DRAIN_QUIET_S = 0.2  # after the child exits, output still held open by grandchildren


def block_signals() -> None:
    """Block the handled signals; call before any thread starts so every thread inherits it."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _HANDLED)


def run_child(
    argv: Sequence[str],
    *,
    use_pty: bool,
    on_output: Callable[[int, bytes], None],
    on_started: Callable[[], None] = lambda: None,
    on_late_signal: Callable[[], None] = lambda: None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run ``argv`` to completion, copying its output to fds 1/2 and to ``on_output``.

    Returns the exit code, or 128+N when the child was killed by signal N. Raises OSError
    (FileNotFoundError, PermissionError) when the command cannot be started.
    ``on_output(stream, data)`` runs on this thread for every chunk and must not block.
    ``on_started`` runs once the child runs, before its output is read.
    ``on_late_signal`` runs (on the signal thread) for a signal arriving after the child
    was reaped, e.g. a second Ctrl-C while output is still being flushed. A child killed
    by a signal or exiting non-zero ends its stream 2 to ``on_output`` with a line saying
    so (``ERROR gasoline-run: ...``), which the terminal does not see.
    ``env``: the child's environment (default: the wrapper's).
    """
    if use_pty:
        master, slave = os.openpty()
        _copy_terminal(slave)
        fds = {master: 1}
        actions = [(os.POSIX_SPAWN_DUP2, slave, 1), (os.POSIX_SPAWN_DUP2, slave, 2)]
        child_ends = [slave]
    else:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        for fd in (out_r, err_r):
            with contextlib.suppress(OSError):
                fcntl.fcntl(fd, _F_SETPIPE_SZ, _PIPE_SIZE)
        fds = {out_r: 1, err_r: 2}
        actions = [(os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, err_w, 2)]
        child_ends = [out_w, err_w]
    try:
        pid = os.posix_spawnp(
            argv[0],
            list(argv),
            dict(os.environ if env is None else env),
            file_actions=actions,
            setsigmask=(),
            setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
        )
    except OSError:
        for fd in (*fds, *child_ends):
            os.close(fd)
        raise
    for fd in child_ends:
        os.close(fd)
    state = _ChildState(pid, master if use_pty else None, on_late_signal)
    threading.Thread(target=state.take_signals, name="gasoline-run-signals", daemon=True).start()
    on_started()
    _pump(fds, state, on_output)
    status = state.wait()
    ending = _ending_line(argv[0], status)
    if ending:
        on_output(2, ending)  # shipped only: the terminal sees what it always saw
    return (
        128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.waitstatus_to_exitcode(status)
    )


def _ending_line(command: str, status: int) -> bytes:
    """For a child that died by a signal or exited non-zero, the line the daemon gets
    about it (a SIGKILL without a word is how the OOM killer ends a process); empty for a
    clean exit."""
    name = os.path.basename(command)
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            signame = signal.Signals(number).name
        except ValueError:
            signame = f"signal {number}"
        text = f"{name} was killed by signal {number} ({signame}), exit status {128 + number}"
    else:
        code = os.waitstatus_to_exitcode(status)
        if not code:
            return b""
        text = f"{name} exited with status {code}"
    return f"ERROR gasoline-run: {text}\n".encode()


class _ChildState:
    def __init__(self, pid: int, master: int | None, on_late_signal: Callable[[], None]) -> None:
        self.pid = pid
        self.master = master
        self.status: int | None = None
        self._lock = threading.Lock()
        self._on_late_signal = on_late_signal

    def poll(self) -> bool:
        with self._lock:
            if self.status is None:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    self.status = status
            return self.status is not None

    def wait(self) -> int:
        """Blocks without the lock, so signals are still forwarded meanwhile."""
        if self.status is None:
            status = os.waitpid(self.pid, 0)[1]
            with self._lock:
                self.status = status
        return self.status

    def take_signals(self) -> None:
        while True:
            info = signal.sigwaitinfo(_HANDLED)
            signo = info.si_signo
            if signo == signal.SIGWINCH:
                if self.master is not None:
                    with contextlib.suppress(OSError):
                        _copy_winsize(self.master)
                continue
            with self._lock:
                reaped = self.status is not None
                if not reaped and info.si_code != _SI_KERNEL:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self.pid, signo)
            if reaped:
                self._on_late_signal()


def _pump(fds: dict[int, int], state: _ChildState, on_output: Callable[[int, bytes], None]) -> None:
    quiet = 0.0
    while fds:
        ready, _, _ = select.select(list(fds), [], [], 0.1)
        if not ready:
            if state.poll():
                quiet += 0.1
                if quiet >= _DRAIN_QUIET_S:
                    break
            continue
        quiet = 0.0
        for fd in ready:
            try:
                data = os.read(fd, _READ_SIZE)
            except OSError as exc:
                if exc.errno != errno.EIO:  # EIO: the pty's last writer closed it
                    raise
                data = b""
            stream = fds[fd]
            if data and _write_all(stream, data):
                on_output(stream, data)
                continue
            # EOF, or our own output is gone (EPIPE): closing our end passes that on to
            # the child, as if it wrote to the closed pipe itself.
            os.close(fd)
            del fds[fd]
    for fd in fds:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> bool:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BrokenPipeError:
            return False
        except OSError as exc:
            if exc.errno == errno.EAGAIN:
                select.select([], [fd], [])
                continue
            raise
        view = view[n:]
    return True


def _copy_terminal(slave: int) -> None:
    """Give the pty the wrapper's terminal settings, minus output processing (done once,
    by the real terminal, when we write there)."""
    with contextlib.suppress(OSError, termios.error):
        attrs = termios.tcgetattr(sys.stdout.fileno())
        attrs[1] &= ~termios.OPOST
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
    with contextlib.suppress(OSError):
        _copy_winsize(slave)


def _copy_winsize(fd: int) -> None:
    size = fcntl.ioctl(1, termios.TIOCGWINSZ, b"\0" * 8)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, size)
