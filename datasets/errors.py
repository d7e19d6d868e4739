"""Re-export of the core's data error, so data code raises the error the CLI knows."""

from bioscale.errors import DataError

__all__ = ["DataError"]
