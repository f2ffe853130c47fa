"""The error types alm-bench raises on purpose; the CLI turns each into one line and an exit code."""


class UsageError(Exception):
    """Bad input from the user (unknown model, task or method, missing data, bad arguments).

    The message is one line: what is wrong and how to fix it. The CLI exits with code 2.
    """

    exit_code = 2


class SpecError(UsageError):
    """An invalid task spec; the message names the file, the field and what is wrong."""


class PluginError(Exception):
    """A plugin failed to import or registered something invalid; other plugins still load."""


class ModelOutputError(RuntimeError):
    """A model broke the protocol (wrong shape, non-finite number, wrong count); names plugin and method."""


class ItemError(Exception):
    """One item could not be evaluated (unreadable audio, ...): it fails with this reason and the run goes on."""


class DistributedError(Exception):
    """A distributed run lost a rank (it died, or the launcher stopped this one); completed results are
    saved and re-running resumes from the cache. The CLI prints one line and exits with code 4."""

    exit_code = 4


class Interrupted(Exception):
    """The user pressed Ctrl-C: the results written so far stay, the cache holds every finished call,
    and running the same command again resumes. The CLI prints one line and exits with code 130."""

    exit_code = 130

    def __init__(self, saved: int, output_dir) -> None:
        super().__init__(f"interrupted: {saved} results saved in {output_dir}/ and every model output computed "
                         "so far is cached; run the same command again to resume")


class StorageError(Exception):
    """A file or folder could not be written: no space, read-only, permission denied, quota, size limit.

    The message is one line: which path, what failed and what to do. The CLI exits with code 74
    (``EX_IOERR``) after listing the results saved before the failure (``summary``, set by the runner).
    """

    exit_code = 74

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.summary = None
