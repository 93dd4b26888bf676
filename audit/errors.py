"""The one error the audit library raises for a log, file or key that fails its checks."""


class AuditError(Exception):
    """An audit log, a file it names, or a key file that fails verification; the message names what and where."""
