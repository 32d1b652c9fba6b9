"""The ``sshlog`` receiver: tails one log file on a remote host over SSH (SFTP polling)."""

import warnings

with warnings.catch_warnings():
    # asyncssh still names cryptography's DSA types, which cryptography 51 deprecates with a
    # UserWarning at import: nothing a user of this receiver could act on.
    warnings.filterwarnings("ignore", "DSA is deprecated", UserWarning)
    import asyncssh  # noqa: F401

from receivers.ssh_tail.config import SshLogConfig
from receivers.ssh_tail.receiver import SshLogReceiver

__all__ = ["SshLogConfig", "SshLogReceiver"]
