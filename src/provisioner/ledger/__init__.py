"""The launch ledger (see ``core``): one interface, two backends (``dialects``), a versioned schema
(``migrations``), and leadership for several hosts sharing a PostgreSQL ledger (``leadership``)."""

from .core import COLUMNS, IN_FLIGHT, Ledger
from .holds import Hold
from .store import Fenced
from .dialects import Conn, Dialect, PostgreSQL, SQLite
from .migrations import ADDED_COLUMNS, LATEST, MIGRATIONS

__all__ = ["ADDED_COLUMNS", "COLUMNS", "Conn", "Dialect", "Fenced", "Hold", "IN_FLIGHT", "LATEST", "Ledger",
           "MIGRATIONS", "PostgreSQL", "SQLite"]
