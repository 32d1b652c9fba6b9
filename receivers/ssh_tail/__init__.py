"""The ``sshlog`` receiver: tails one log file on a remote host over SSH (SFTP polling)."""

from receivers.ssh_tail.config import SshLogConfig
from receivers.ssh_tail.receiver import SshLogReceiver

__all__ = ["SshLogConfig", "SshLogReceiver"]
