"""The ``sshlog`` receiver: tails one log file on a remote host over SSH (SFTP polling).

The receiver is ``receivers.ssh_tail.receiver.SshLogReceiver``; this package exports only
its config, so reading a config does not load asyncssh (and cryptography), which a daemon
without an ``sshlog`` receiver should not pay for.
"""

from receivers.ssh_tail.config import SshLogConfig

__all__ = ["SshLogConfig"]
