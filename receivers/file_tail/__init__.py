"""The file tailer receiver (``filelog``): follows files and globs through rotation.

See ``design.md`` beside this file for how files are identified, how offsets are kept and
the known limitations.
"""

from receivers.file_tail.config import FileLogConfig
from receivers.file_tail.tailer import FileLogReceiver

__all__ = ["FileLogConfig", "FileLogReceiver"]
