"""The exception tree of archiver.

Every error the tool raises on purpose derives from `ArchiverError` and knows the exit status
it stands for; `cli.main` is the only place that turns one into a code. Third-party exceptions
(aiohttp, sqlite3, OSError) are converted where they are caught, with `raise ... from exc`, so
nothing above the HTTP layer, the manifest or the file writer sees them; the cause is kept
for `-v`, which logs the chain under the error's one line. A cause is dropped (`from None`) only
where its text would show what the message leaves out on purpose: a signed URL, a credential.

    ArchiverError                     exit 1
    ├── UsageError                    exit 2: a command line that makes no sense
    ├── ConfigError                   exit 2: the config file is missing, unreadable or wrong
    ├── ManifestError                 exit 2: the manifest is not ours or is from a newer schema
    ├── ArchiveBusy                   exit 4: another run holds the archive's lock
    ├── SourceError                   exit 3: a source could not be listed
    │   ├── CredentialsRejected           the service refused the credential
    │   ├── ApiError                      the service answered with an error code or bad data
    │   └── ListingRepeats                page after page brought no task new to the run
    ├── TransferError                 exit 1: one media file could not be fetched
    │   ├── HttpStatusError               a final HTTP status (404, 403, ...)
    │   ├── FileTooLarge                  larger than `max_file_bytes`
    │   └── UnsafeUrl                     not an http(s) URL
    ├── ArchivePathError              exit 2: a path inside the archive is a link or in the way
    └── ArchiveWriteError             exit 1: the archive could not be written (disk full, ...)
        └── DiskSpaceLow                  less free than `min_free_space`: the run stops

An `ArchivePathError` met by one item fails that item (exit 1), met by the report that
report; it ends a command (exit 2, nothing touched) only when met at the lock or the manifest.

A `SourceError` does not name its source: the job that lists the source says which one
(`chanjing: cannot list: credentials rejected: code 10400 ...`), since sources can share one
token or limiter, and an error met through a shared one belongs to each of them.

`RetryableError` (and its `MalformedResponse`) marks a failure that the HTTP layer may retry; it
is consumed by `archiver.net.retry` and escapes only as the cause of a final error.
"""

from __future__ import annotations


class ArchiverError(Exception):
    """Root of every error archiver raises on purpose."""

    exit_status = 1


class UsageError(ArchiverError):
    """The command line asks for something that cannot be done."""

    exit_status = 2


class ConfigError(ArchiverError):
    """The config file is missing, unreadable, or has a bad key or value."""

    exit_status = 2


class ManifestError(ArchiverError):
    """The manifest cannot be used: not a SQLite database, or from a newer archiver."""

    exit_status = 2


class ArchiveBusy(ArchiverError):
    """Another run holds the lock of this archive."""

    exit_status = 4


class SourceError(ArchiverError):
    """A source could not be listed; the other sources carry on."""

    exit_status = 3


class CredentialsRejected(SourceError):
    """The service rejected the configured credential."""


class ApiError(SourceError):
    """The service answered with an error code, or with data of the wrong shape.

    Its message names the code and the service's trace id, which is all anyone reads of them.
    """


class ListingRepeats(SourceError):
    """The listing went on without bringing a task not already listed in this run."""


class TransferError(ArchiverError):
    """One media file could not be fetched; its task is retried by the next run."""


class HttpStatusError(TransferError):
    """The media host answered with a final, non-retryable HTTP status (named in the message)."""


class FileTooLarge(TransferError):
    """The file is larger than the configured `max_file_bytes`."""


class UnsafeUrl(TransferError):
    """The URL is not an http(s) URL, so it is never fetched."""


class ArchivePathError(ArchiverError):
    """A path inside the archive cannot be used: a link, or a file where a folder should be."""

    exit_status = 2


class ArchiveWriteError(ArchiverError):
    """Writing into the archive failed (disk full, permissions, ...); the run stops."""


class DiskSpaceLow(ArchiveWriteError):
    """The archive's file system has less free than `min_free_space`; the run stops."""


class RetryableError(ArchiverError):
    """A failure worth another attempt; `retry_after` is the server's wish, in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class MalformedResponse(RetryableError):
    """The service answered, but not with JSON of the documented shape."""
