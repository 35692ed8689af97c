"""archiver: a complete, verified local archive of videos generated on hosted services."""

__version__ = "0.1.0"
