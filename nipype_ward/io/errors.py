"""The errors and warnings users see: each names the file and says what to do.

Every problem with an input file raises :class:`InputError`, one message that
names the file and says what is wrong with it; data that can be used but
were worked around warn with :class:`DataWarning`; an output that cannot be
written raises :class:`WriteError` (the file there before is unchanged). The
command lines print each as one line.
"""

from __future__ import annotations


class InputError(ValueError):
    """An input file cannot be used; the message names the file and the problem."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class DataWarning(UserWarning):
    """Data that can be used, worked around in a way the user should know of.

    The message names the file and says what was done; the command lines
    print it as one line (``nipype-ward: warning: ...``).
    """

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class WriteError(OSError):
    """An output that could not be written; the file that was there before is unchanged."""

    def __init__(self, path, exc: OSError):
        super().__init__(exc.errno, exc.strerror)
        self.path = str(path)

    def __str__(self):
        return (f"{self.path}: cannot be written ({self.strerror}): free some space or give "
                "a folder you can write to; the file there before is unchanged")
