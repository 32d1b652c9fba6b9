"""Git repositories on the timeline: commits, branch switches and uncommitted changes as
events with ``source: "git"``. ``repo`` runs git, ``watch`` decides when (cheaply),
``receiver`` is the daemon's ``gitwatch`` receiver; ``gasoline test`` uses ``snapshot``."""

from receivers.git_watch.receiver import GitWatchConfig, GitWatchReceiver

__all__ = ["GitWatchConfig", "GitWatchReceiver"]
